//! The hand-written lexer: turns condition text into tokens on demand, each
//! with its 1-based line and column (in characters) for error messages.

use crate::error::{Expected, Found, ParseError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word (keyword or name), lower-cased (ASCII) since keywords are
    /// case-insensitive.
    Word(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=` or `==`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `&&`.
    AndAnd,
    /// `||`.
    OrOr,
    /// `!`.
    Bang,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub column: usize,
    /// The token as written, for "found …".
    pub text: String,
}

impl Token {
    pub fn found(&self) -> Found {
        if self.tok == Tok::End {
            Found::EndOfInput
        } else {
            Found::Text(self.text.clone())
        }
    }
}

pub(crate) struct Lexer<'a> {
    source: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(source: &'a str) -> Self {
        Self {
            source,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.source[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.source[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, expected: Expected, found: Found) -> ParseError {
        ParseError {
            line: self.line,
            column: self.column,
            expected: vec![expected],
            found,
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek_char().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_whitespace();
        let (line, column, start) = (self.line, self.column, self.pos);
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::End,
                line,
                column,
                text: String::new(),
            });
        };
        let tok = match c {
            '"' => Tok::Str(self.string()?),
            '0'..='9' => self.number(start, line, column)?,
            '-' if self.peek_second().is_some_and(|d| d.is_ascii_digit()) => {
                self.number(start, line, column)?
            }
            c if c.is_alphanumeric() || c == '_' => {
                while self
                    .peek_char()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                Tok::Word(self.source[start..self.pos].to_ascii_lowercase())
            }
            _ => self.punctuation(c)?,
        };
        Ok(Token {
            tok,
            line,
            column,
            text: self.source[start..self.pos].to_owned(),
        })
    }

    fn punctuation(&mut self, c: char) -> Result<Tok, ParseError> {
        let second = self.peek_second();
        let (tok, width) = match (c, second) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('=', _) => (Tok::Eq, 1),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('!', _) => (Tok::Bang, 1),
            ('<', Some('>')) => (Tok::Ne, 2),
            ('<', Some('=')) => (Tok::Le, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('>', _) => (Tok::Gt, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            _ => {
                return Err(self.error(Expected::Predicate, Found::Text(c.to_string())));
            }
        };
        for _ in 0..width {
            self.bump();
        }
        Ok(tok)
    }

    fn number(&mut self, start: usize, line: usize, column: usize) -> Result<Tok, ParseError> {
        if self.peek_char() == Some('-') {
            self.bump();
        }
        self.digits();
        if self.peek_char() == Some('.') && self.peek_second().is_some_and(|d| d.is_ascii_digit()) {
            self.bump();
            self.digits();
        }
        if matches!(self.peek_char(), Some('e' | 'E')) {
            let rest = &self.source[self.pos + 1..];
            let sign = usize::from(rest.starts_with(['+', '-']));
            if rest[sign..].starts_with(|d: char| d.is_ascii_digit()) {
                for _ in 0..=sign {
                    self.bump();
                }
                self.digits();
            }
        }
        let text = &self.source[start..self.pos];
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Tok::Num(value)),
            _ => Err(ParseError {
                line,
                column,
                expected: vec![Expected::Number],
                found: Found::Text(text.to_owned()),
            }),
        }
    }

    fn digits(&mut self) {
        while self.peek_char().is_some_and(|d| d.is_ascii_digit()) {
            self.bump();
        }
    }

    /// A `"…"` string; the opening quote is next.
    fn string(&mut self) -> Result<String, ParseError> {
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(Expected::StringEnd, Found::EndOfInput));
            };
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ParseError> {
        let at = (self.line, self.column);
        let bad = |lexer: &Self, text: String| ParseError {
            line: at.0,
            column: at.1 - 1,
            expected: vec![Expected::Escape],
            found: if lexer.peek_char().is_none() && text.is_empty() {
                Found::EndOfInput
            } else {
                Found::Text(text)
            },
        };
        let Some(c) = self.bump() else {
            return Err(bad(self, String::new()));
        };
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                if self.peek_char() != Some('{') {
                    return Err(bad(self, "\\u".to_owned()));
                }
                self.bump();
                let mut hex = String::new();
                while let Some(h) = self.peek_char() {
                    if h == '}' || hex.len() > 6 {
                        break;
                    }
                    hex.push(h);
                    self.bump();
                }
                if self.bump() != Some('}') {
                    return Err(bad(self, format!("\\u{{{hex}")));
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(self, format!("\\u{{{hex}}}")))?
            }
            other => return Err(bad(self, format!("\\{other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Tok> {
        let mut lexer = Lexer::new(source);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.tok == Tok::End {
                return out;
            }
            out.push(token.tok);
        }
    }

    #[test]
    fn words_numbers_strings_and_operators() {
        assert_eq!(
            tokens(r#"TAG("a\"b\u{4e2d}") >= -5000.5 && !x <> 1e3"#),
            vec![
                Tok::Word("tag".into()),
                Tok::LParen,
                Tok::Str("a\"b中".into()),
                Tok::RParen,
                Tok::Ge,
                Tok::Num(-5000.5),
                Tok::AndAnd,
                Tok::Bang,
                Tok::Word("x".into()),
                Tok::Ne,
                Tok::Num(1000.0),
            ]
        );
    }

    #[test]
    fn positions_count_characters_and_lines() {
        let mut lexer = Lexer::new("省份\n  abc");
        let first = lexer.next_token().unwrap();
        assert_eq!((first.line, first.column), (1, 1));
        let second = lexer.next_token().unwrap();
        assert_eq!(
            (second.line, second.column, second.text.as_str()),
            (2, 3, "abc")
        );
    }

    #[test]
    fn bad_strings_are_located() {
        let err = Lexer::new(r#"  "abc"#).next_token().unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1, column 7: expected the closing '\"' of the string, found end of input"
        );
        let err = Lexer::new(r#""a\qb""#).next_token().unwrap_err();
        assert_eq!((err.line, err.column), (1, 3));
        assert_eq!(err.found, Found::Text("\\q".into()));
        assert!(Lexer::new(r#""\u{110000}""#).next_token().is_err());
        assert!(Lexer::new("1e999").next_token().is_err());
        assert!(Lexer::new("#").next_token().is_err());
    }
}
