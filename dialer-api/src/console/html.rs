//! The console's HTML: escaping, and the headers every page carries. Pages are small and
//! mostly static (the live data is drawn by `assets/console.js` from the stream), so they are
//! plain Rust strings with every dynamic value escaped, not a template engine.

use actix_web::HttpResponse;
use actix_web::http::header;

/// Text safe inside HTML elements and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Scripts and styles from this origin only, no inline script, no framing, nothing sent to
/// another site: an injected string can neither run nor leak.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page with the console's security headers.
pub fn page(title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         </head>\n<body>{body}</body></html>\n",
        escape(title)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Not `no-referrer`: under it a browser sends `Origin: null` with a form's POST, and
        // the origin check refuses the console's own sign-in.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(html)
}

/// `303 See Other` to `location`, with extra `Set-Cookie` when given.
pub fn redirect(location: &str, cookie: Option<String>) -> HttpResponse {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(c) = cookie {
        res.insert_header((header::SET_COOKIE, c));
    }
    res.finish()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_could_open_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
