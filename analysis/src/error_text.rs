//! Errors for people: an error and its sources in one line.

/// `e` and its sources joined by `: `, skipping a source whose text is already shown (hyper,
/// reqwest and kube wrap the same cause several times), e.g. "error sending request: client
/// error (Connect): tcp connect error: Connection refused".
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}
