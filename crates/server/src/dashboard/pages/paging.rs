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

/// "Page 2 of 5" with previous and next links; `query` is the rest of the query string.
pub fn links(path: &str, query: &str, page: usize, pages: usize) -> Markup {
    let href = |to: usize| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key != "page" {
                serializer.append_pair(&key, &value);
            }
        }
        serializer.append_pair("page", &to.to_string());
        format!("{path}?{}", serializer.finish())
    };
    html! {
        @if pages > 1 {
            nav class="pages" aria-label="Pages of the list" {
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
        let html = links("/devices", "group=eu&page=2", 2, 3).into_string();
        assert!(
            html.contains("href=\"/devices?group=eu&amp;page=1\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/devices?group=eu&amp;page=3\""),
            "{html}"
        );
    }
}
