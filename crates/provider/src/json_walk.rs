//! A hand walk over a JSON text that reads each value with `serde_json` and knows where it ends.
//!
//! The adapters keep each record's exact JSON next to its typed reading. `serde_json` cannot
//! type a value and hand back its source span in one pass, so reading a listing with serde alone
//! scans every record twice: once skipped as a `&RawValue` (its text), once typed from that text.
//! [`JsonCursor`] walks the punctuation of objects and arrays itself and reads each value with a
//! `serde_json` stream deserializer started at the value, whose byte offset afterwards is the
//! value's end: one typed pass, and the text comes for free.
//!
//! The walk is deliberately narrow: whatever it does not expect (a key written with an escape,
//! a missing colon, a trailing comma, a value nested deeper than [`MAX_MEMBER_NESTING`]) makes it
//! give up with `None`, and the caller falls back to its general `serde_json` reading. It owns no
//! vendor format and never panics.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// How many `[`/`{` an envelope member read by [`JsonCursor::member`] may contain. A reading
/// started at a member counts nesting from zero, where the reading of the whole body would
/// count it from the member's own depth; a member this small can never reach `serde_json`'s
/// recursion limit (128) in either, so both readings agree on it.
pub const MAX_MEMBER_NESTING: usize = 64;

/// A position in a JSON text, moved forward by reading its values.
#[derive(Debug, Clone)]
pub struct JsonCursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> JsonCursor<'a> {
    /// A cursor at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        JsonCursor { text, pos: 0 }
    }

    /// The byte offset of the cursor in the text.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace (the whitespace is consumed, the byte is not).
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes `byte` when it is next after whitespace.
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads the next value as `T`, with its exact text (no surrounding whitespace). On an error
    /// the cursor does not move, so the value can be read again as something else.
    pub fn read<T: Deserialize<'a>>(&mut self) -> Result<(T, &'a str), serde_json::Error> {
        self.skip_whitespace();
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        match values.next() {
            Some(Ok(value)) => {
                let end = values.byte_offset();
                let text = rest.get(..end).unwrap_or_default();
                self.pos += end;
                Ok((value, text))
            }
            Some(Err(error)) => Err(error),
            None => Err(serde::de::Error::custom(
                "no value before the end of the text",
            )),
        }
    }

    /// Reads a small envelope member as `T`; `None` when it does not read as `T` or is nested
    /// more than [`MAX_MEMBER_NESTING`] deep.
    pub fn member<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let (value, text) = self.read::<T>().ok()?;
        let openings = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
        (openings <= MAX_MEMBER_NESTING).then_some(value)
    }

    /// Skips the next value (checked as JSON, as `serde_json` checks a field it ignores).
    pub fn skip(&mut self) -> Option<()> {
        self.read::<IgnoredAny>().ok().map(|_| ())
    }

    /// A key without escapes: its text between the quotes.
    fn plain_key(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let bytes = self.text.as_bytes();
        loop {
            match *bytes.get(self.pos)? {
                b'"' => break,
                // An escape (serde would unescape it) or a control character (serde would
                // refuse it): not ours to judge.
                b'\\' | 0x00..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let key = self.text.get(start..self.pos)?;
        self.pos += 1;
        Some(key)
    }

    /// Walks an object: `member` is called with each key and must consume its value (with
    /// [`read`](Self::read), [`member`](Self::member), [`skip`](Self::skip) or a nested walk).
    /// `None` when the next value is not an object written plainly, or `member` gives up.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&'a str, &mut Self) -> Option<()>,
    ) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.plain_key()?;
            if !self.eat(b':') {
                return None;
            }
            self.skip_whitespace();
            member(key, self)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// Walks an array: `element` is called at each element and must consume it. `None` when
    /// the next value is not an array, or `element` gives up.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.skip_whitespace();
            element(self)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(());
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    /// The elements of an array read by the cursor: each typed as `T` where it reads, with its
    /// text; `Err(text)` where it does not.
    fn elements<'a, T: Deserialize<'a>>(
        text: &'a str,
    ) -> Option<Vec<Result<(T, &'a str), &'a str>>> {
        let mut cursor = JsonCursor::new(text);
        let mut out = Vec::new();
        cursor.array(|c| {
            match c.read::<T>() {
                Ok(read) => out.push(Ok(read)),
                Err(_) => out.push(Err(c.read::<&RawValue>().ok()?.1)),
            }
            Some(())
        })?;
        cursor.at_end().then_some(out)
    }

    #[test]
    fn each_element_comes_with_its_exact_text_whatever_the_spacing() {
        let text = " [ {\"a\":1} ,{ \"a\" : 2 }\n,\t{\"a\":3}\r\n] ";
        let read = elements::<serde_json::Value>(text).unwrap();
        let texts: Vec<&str> = read.iter().map(|r| r.as_ref().unwrap().1).collect();
        assert_eq!(texts, ["{\"a\":1}", "{ \"a\" : 2 }", "{\"a\":3}"]);
        // Scalars end at a comma or a bracket too.
        let read = elements::<u64>("[1,22 , 333]").unwrap();
        let values: Vec<(u64, &str)> = read.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, [(1, "1"), (22, "22"), (333, "333")]);
        assert!(elements::<u64>("[]").unwrap().is_empty());
        assert!(elements::<u64>(" [ ] ").unwrap().is_empty());
    }

    #[test]
    fn an_element_that_does_not_type_is_read_again_raw_and_the_walk_goes_on() {
        #[derive(Debug, Deserialize)]
        struct Rec {
            #[allow(dead_code)]
            id: u32,
        }
        let text = r#"[{"id":1},{"id":"x"},"oops",{"id":4}]"#;
        let read = elements::<Rec>(text).unwrap();
        assert_eq!(read.len(), 4);
        assert_eq!(read[0].as_ref().unwrap().1, r#"{"id":1}"#);
        assert_eq!(read[1].as_ref().unwrap_err(), &r#"{"id":"x"}"#);
        assert_eq!(read[2].as_ref().unwrap_err(), &r#""oops""#);
        assert_eq!(read[3].as_ref().unwrap().1, r#"{"id":4}"#);
    }

    #[test]
    fn what_is_not_plain_json_makes_the_walk_give_up() {
        for text in [
            "[1,]",
            "[1 2]",
            "[1",
            "[",
            "[,1]",
            "[{\"a\":}]",
            "[{\"a\":1]",
            "{\"a\":1}",
            "",
            "[1] x",
            "[01]",
            "[1x]",
        ] {
            assert!(elements::<serde_json::Value>(text).is_none(), "{text}");
        }
    }

    #[test]
    fn objects_give_their_keys_and_refuse_escapes_and_odd_punctuation() {
        let walk = |text: &str| {
            let mut cursor = JsonCursor::new(text);
            let mut seen = Vec::new();
            cursor.object(|key, c| {
                seen.push((key.to_owned(), c.read::<serde_json::Value>().ok()?.0));
                Some(())
            })?;
            cursor.at_end().then_some(seen)
        };
        assert_eq!(
            walk(" { \"a\" : 1 ,\n\"b\":[2] } ").unwrap(),
            [
                ("a".to_owned(), serde_json::json!(1)),
                ("b".to_owned(), serde_json::json!([2]))
            ]
        );
        assert_eq!(walk("{}").unwrap(), []);
        for text in [
            r#"{"\u0061":1}"#,
            "{\"a\u{1}\":1}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":1"#,
            r#"{"a":1}}"#,
            r#"[1]"#,
        ] {
            assert!(walk(text).is_none(), "{text}");
        }
    }

    #[test]
    fn members_nested_deeper_than_the_bound_are_refused() {
        let shallow = format!(
            "{}{}",
            "[".repeat(MAX_MEMBER_NESTING),
            "]".repeat(MAX_MEMBER_NESTING)
        );
        let deep = format!("[{shallow}]");
        assert!(JsonCursor::new(&shallow).member::<IgnoredAny>().is_some());
        assert!(JsonCursor::new(&deep).member::<IgnoredAny>().is_none());
        assert!(JsonCursor::new("\"x\"").member::<u8>().is_none());
        assert!(JsonCursor::new("   ").member::<IgnoredAny>().is_none());
    }
}
