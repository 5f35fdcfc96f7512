use axum::response::Html;

use crate::html;
use crate::session::Visitor;

pub async fn landing(visitor: Visitor) -> Html<String> {
    let signed_in = visitor.session.as_ref().is_some_and(|s| !s.second_step_pending());
    let links = if signed_in {
        "<p><a href=\"/account\">Your account</a></p>"
    } else {
        "<p><a href=\"/signup\">Create an account</a> or <a href=\"/login\">log in</a>.</p>"
    };
    let body = format!(
        "<p>An example application with accounts of its own. Its second factor is the Gatehouse authenticator: \
         turn it on in your account, and every login asks your phone.</p>{links}"
    );
    html::page("Welcome", &body)
}
