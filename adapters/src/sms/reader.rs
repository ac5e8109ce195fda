//! A bounds-checked cursor over PDU bytes.
//!
//! Every read names the field it is reading so that a short input turns into
//! an error such as `truncated PDU: TP-SCTS at offset 12` instead of a panic.
//! Offsets are absolute: a reader over a sub-slice keeps the offset of that
//! slice in the original input.

use crate::Error;

/// Cursor over a byte slice whose reads never panic.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Number of bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads one byte for `field`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::truncated(field, self.offset())),
        }
    }

    /// Looks at the next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads exactly `n` bytes for `field`.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Error::truncated(field, self.offset()))?;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::truncated(field, self.offset())),
        }
    }

    /// Reads exactly `N` bytes for `field` into an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Error> {
        let s = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Splits off the next `n` bytes as a reader of their own (keeping
    /// absolute offsets), advancing this one past them.
    pub fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader<'a>, Error> {
        let base = self.offset();
        let buf = self.take(n, field)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Everything not yet read, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    /// Fails with a trailing-bytes error naming `field` if input remains.
    pub fn expect_end(&self, field: &'static str) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Pdu {
                field,
                offset: self.offset(),
                reason: crate::error::PduReason::TrailingBytes,
            })
        }
    }

    /// Decodes exactly one value from `b` with `decode`, refusing bytes
    /// left after it (they are blamed on the user data, the last field of
    /// every TPDU).
    pub fn decode_exactly<T>(
        b: &'a [u8],
        decode: impl FnOnce(&mut Reader<'a>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut r = Reader::new(b);
        let v = decode(&mut r)?;
        r.expect_end("TP-UD")?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8("a"), Ok(1));
        let mut s = r.sub(1, "b").unwrap_or_else(|_| Reader::new(&[]));
        assert_eq!(s.offset(), 1);
        assert_eq!(s.u8("b"), Ok(2));
        assert_eq!(s.u8("b"), Err(Error::truncated("b", 2)));
        assert_eq!(r.take(5, "c"), Err(Error::truncated("c", 2)));
        assert_eq!(r.take(usize::MAX, "c"), Err(Error::truncated("c", 2)));
        assert!(r.expect_end("x").is_err());
        assert_eq!(r.rest(), &[3]);
        assert!(r.expect_end("x").is_ok());
    }
}
