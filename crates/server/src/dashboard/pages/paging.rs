//! Pages of long lists: which slice of the items a `page` query shows, and the links to the
//! neighbouring pages (keeping the other query parameters).

use maud::{Markup, html};

/// Items per page.
pub const PAGE_SIZE: usize = 50;

/// The slice of `items` on 1-based `page` (clamped to the last page).
pub fn slice<T>(items: &[T], page: usize) -> (&[T], usize, usize) {
    let pages = items.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let end = (start + PAGE_SIZE).min(items.len());
    (&items[start..end], page, pages)
}

/// Which list of a page a set of links moves through: a page with one list pages it with
/// `page`; a page with several gives each its own parameter, and a fragment that brings the
/// reader back to that list.
pub struct Pager<'a> {
    /// The page's path.
    pub path: &'a str,
    /// The query parameter holding this list's page number.
    pub param: &'a str,
    /// The id of the list's section (the links end in `#section`), or empty.
    pub section: &'a str,
    /// What the navigation is called (for screen readers).
    pub label: &'a str,
}

impl<'a> Pager<'a> {
    /// The one list of the page at `path`.
    pub fn whole(path: &'a str) -> Self {
        Self {
            path,
            param: "page",
            section: "",
            label: "Pages of the list",
        }
    }

    /// The page number this list shows, from `query`: its last value for the parameter, 1 when
    /// absent or unreadable.
    pub fn current(&self, query: &str) -> usize {
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key == self.param)
            .last()
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(1)
    }
}

/// "Page 2 of 5" with previous and next links for `pager`'s list; `query` is the rest of the
/// query string, kept in the links.
pub fn links(pager: &Pager<'_>, query: &str, page: usize, pages: usize) -> Markup {
    let href = |to: usize| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key != pager.param {
                serializer.append_pair(&key, &value);
            }
        }
        serializer.append_pair(pager.param, &to.to_string());
        let fragment = if pager.section.is_empty() {
            String::new()
        } else {
            format!("#{}", pager.section)
        };
        format!("{}?{}{fragment}", pager.path, serializer.finish())
    };
    html! {
        @if pages > 1 {
            nav class="pages" aria-label=(pager.label) {
                @if page > 1 { a href=(href(page - 1)) rel="prev" { "Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a href=(href(page + 1)) rel="next" { "Next" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_clamp_and_links_keep_the_filters() {
        let items: Vec<u32> = (0..120).collect();
        let (shown, page, pages) = slice(&items, 3);
        assert_eq!((shown.len(), page, pages), (20, 3, 3));
        assert_eq!(slice(&items, 99).1, 3);
        assert_eq!(slice::<u32>(&[], 0), (&[][..], 1, 1));
        let html = links(&Pager::whole("/devices"), "group=eu&page=2", 2, 3).into_string();
        assert!(
            html.contains("href=\"/devices?group=eu&amp;page=1\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/devices?group=eu&amp;page=3\""),
            "{html}"
        );
    }

    #[test]
    fn each_list_of_a_page_keeps_its_own_page_and_the_others() {
        let pager = Pager {
            path: "/people",
            param: "keys_page",
            section: "api-keys",
            label: "Pages of API keys",
        };
        assert_eq!(pager.current("members_page=3&keys_page=2"), 2);
        assert_eq!(pager.current("members_page=3&keys_page=x"), 1);
        assert_eq!(pager.current("keys_page=2&keys_page=4"), 4);
        let html = links(&pager, "members_page=3&keys_page=2", 2, 3).into_string();
        assert!(
            html.contains("href=\"/people?members_page=3&amp;keys_page=3#api-keys\""),
            "{html}"
        );
        assert!(html.contains("aria-label=\"Pages of API keys\""), "{html}");
    }
}
