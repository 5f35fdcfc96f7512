//! The page frame and the one escape every interpolated value goes through.

use axum::response::Html;

/// Escapes text for HTML element content and double-quoted attribute values alike.
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

const STYLE: &str = "
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f8; }
header { background: #1d2430; padding: .75rem 1.5rem; }
header a { color: #fff; font-weight: 600; text-decoration: none; }
main { max-width: 32rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff; border-radius: 8px;
       box-shadow: 0 1px 3px rgba(0, 0, 0, .12); }
h1 { font-size: 1.5rem; margin-top: 0; }
label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
input[type=email], input[type=password], input[type=text] { width: 100%; box-sizing: border-box; padding: .5rem;
       font: inherit; border: 1px solid #b8c0cc; border-radius: 4px; }
button { margin-top: 1rem; padding: .5rem 1rem; font: inherit; border: 0; border-radius: 4px; background: #2557d6;
         color: #fff; cursor: pointer; }
button.secondary { background: #5b6473; }
form.inline { display: inline; }
.notice { padding: .5rem .75rem; border-radius: 4px; background: #e7f0ff; }
.error { padding: .5rem .75rem; border-radius: 4px; background: #fde8e8; color: #8a1c1c; }
code { word-break: break-all; background: #f0f2f5; padding: .1rem .3rem; border-radius: 3px; }
img.qr { display: block; width: 14rem; height: 14rem; margin: 1rem auto; }
hr { border: 0; border-top: 1px solid #dde2e8; margin: 1.5rem 0; }
";

/// A whole page around `body`, which the caller has built from escaped values.
pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Relying App</title><style>{STYLE}</style></head>\
         <body><header><a href=\"/\">Relying App</a></header><main><h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = escape(title),
    ))
}

/// The hidden field every form carries; the session middleware checks it on every POST.
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(token))
}

pub fn error(message: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
}

pub fn notice(message: &str) -> String {
    format!("<p class=\"notice\" role=\"status\">{}</p>", escape(message))
}

/// A form of one button that posts to `action`; a secondary one is grey.
pub fn button_form(action: &str, csrf: &str, label: &str, secondary: bool) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}<button{}>{}</button></form>",
        escape(action),
        csrf_field(csrf),
        if secondary { " class=\"secondary\"" } else { "" },
        escape(label),
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain été"), "plain été");
    }
}
