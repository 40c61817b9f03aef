//! Text that came from somewhere else (a cloud's answer, a journal, a spec) made safe for where
//! it lands: one line for a field of a file or a message, and no terminal control sequences.
//!
//! A cloud's health message or a resource name may hold a newline (which would start a new
//! YAML key or a forged report line) or ESC/OSC sequences (which would drive the reader's
//! terminal). [`one_line`] escapes every control character; [`terminal`] keeps the newlines
//! and tabs a message is laid out with and escapes the rest.

/// Whether `c` must not reach a file field or a terminal as itself: C0 and C1 controls, DEL,
/// and the Unicode bidirectional overrides and isolates (which reorder what a reader sees).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn escape_into(out: &mut String, c: char) {
    out.extend(c.escape_default());
}

/// `s` on one line: every control character (newlines included) written as its escape
/// (`\n`, `\u{1b}`).
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hostile(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` for a terminal: newlines and tabs kept, every other control character escaped, so that
/// no ESC, CSI or OSC sequence reaches the reader's terminal.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c != '\n' && c != '\t' && is_hostile(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_are_escaped() {
        let hostile = "ok\nnext: line\x1b]0;title\x07\x1b[2J\u{9b}31m\u{202e}txt";
        let one = one_line(hostile);
        assert!(!one.contains('\n') && !one.contains('\x1b') && !one.contains('\u{9b}'));
        assert!(!one.contains('\u{202e}'));
        assert_eq!(one_line("plain ünïcode"), "plain ünïcode");
        assert_eq!(one_line("a\nb"), "a\\nb");
        let t = terminal(hostile);
        assert!(t.contains("ok\nnext"), "{t}");
        assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
        assert_eq!(terminal("a\tb\nc"), "a\tb\nc");
    }
}
