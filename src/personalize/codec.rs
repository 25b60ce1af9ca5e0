//! Byte encoding of personalization records (little-endian, length-prefixed, versioned).
//!
//! Decoding is strict: every length is checked against the remaining bytes, so a damaged
//! record is a typed [`PersonalizeError::MalformedRecord`], never a panic or a huge allocation.

use super::error::{PersonalizeError, Result};

/// Appends fields to a record.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(tag: &[u8; 4], version: u8) -> Self {
        let mut w = Self::default();
        w.buf.extend_from_slice(tag);
        w.buf.push(version);
        w
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn f32(&mut self, v: f32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn len(&mut self, n: usize) -> &mut Self {
        self.u64(n as u64)
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.len(v.len());
        self.buf.extend_from_slice(v);
        self
    }

    pub(crate) fn f32s<'a>(&mut self, v: impl ExactSizeIterator<Item = &'a f32>) -> &mut Self {
        self.len(v.len());
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields back in the order they were written.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks the tag and returns the reader and the record's version.
    pub(crate) fn new(buf: &'a [u8], tag: &[u8; 4], what: &'static str) -> Result<(Self, u8)> {
        let mut r = Self { buf, what };
        let head = r.take(4)?;
        if head != tag {
            return Err(PersonalizeError::MalformedRecord(what));
        }
        let version = r.u8()?;
        Ok((r, version))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(PersonalizeError::MalformedRecord(self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// A length that must fit in the remaining bytes at `unit` bytes per item.
    pub(crate) fn len(&mut self, unit: usize) -> Result<usize> {
        let n = usize::try_from(self.u64()?)
            .map_err(|_| PersonalizeError::MalformedRecord(self.what))?;
        match n.checked_mul(unit.max(1)) {
            Some(bytes) if bytes <= self.buf.len() => Ok(n),
            _ => Err(PersonalizeError::MalformedRecord(self.what)),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }

    pub(crate) fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn end(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(PersonalizeError::MalformedRecord(self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(a: u32, b: u64, c: &[f32], d: &[u8]) -> Vec<u8> {
        let mut w = Writer::new(b"TEST", 1);
        w.u32(a).u64(b).f32s(c.iter()).bytes(d);
        w.finish()
    }

    proptest! {
        #[test]
        fn round_trips(a: u32, b: u64, c in proptest::collection::vec(any::<f32>(), 0..20),
                       d in proptest::collection::vec(any::<u8>(), 0..20)) {
            let buf = encode(a, b, &c, &d);
            let (mut r, v) = Reader::new(&buf, b"TEST", "test").unwrap();
            prop_assert_eq!(v, 1);
            prop_assert_eq!(r.u32().unwrap(), a);
            prop_assert_eq!(r.u64().unwrap(), b);
            let back = r.f32s().unwrap();
            prop_assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                            c.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            prop_assert_eq!(r.bytes().unwrap(), &d[..]);
            prop_assert!(r.end().is_ok());
        }

        #[test]
        fn damaged_records_are_errors_not_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((mut r, _)) = Reader::new(&bytes, b"TEST", "test") {
                let _ = r.u32().and_then(|_| r.u64()).and_then(|_| r.f32s()).and_then(|_| r.bytes().map(|_| ()));
            }
        }
    }

    #[test]
    fn truncation_and_huge_lengths_are_rejected() {
        let buf = encode(1, 2, &[1.0, 2.0], b"xy");
        for cut in 0..buf.len() {
            let Ok((mut r, _)) = Reader::new(&buf[..cut], b"TEST", "test") else {
                continue;
            };
            let all = r
                .u32()
                .and_then(|_| r.u64())
                .and_then(|_| r.f32s())
                .and_then(|_| r.bytes().map(|_| ()));
            assert!(all.is_err(), "cut at {cut}");
        }
        let mut w = Writer::new(b"TEST", 1);
        w.u64(u64::MAX);
        let buf = w.finish();
        let (mut r, _) = Reader::new(&buf, b"TEST", "test").unwrap();
        assert!(r.f32s().is_err());
        assert!(Reader::new(b"NOPE\x01", b"TEST", "test").is_err());
    }
}
