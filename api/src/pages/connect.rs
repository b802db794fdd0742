//! The page at the end of an OAuth connect flow (issue 20): `GET /oauth/callback/{integration}`,
//! seed 004's callback path, where the provider sends the browser back. It says in words
//! whether the connection was made, and why not when it was not (the provider's refusal, a
//! failed exchange, or a connection link that is forged, expired, already used or for another
//! integration: those store nothing). See [`crate::connect`] for the checks.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::federation::frame_of;
use super::{Frame, PageError, render};
use crate::connect::{self, Finished};
use crate::extract::RequestContext;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "connect_result.html")]
struct ConnectResultPage<'a> {
    frame: &'a Frame,
    title: &'a str,
    message: &'a str,
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /oauth/callback/{integration}?code=...&state=...` (or `?error=...&state=...`).
pub async fn callback(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(integration): Path<String>,
    uri: Uri,
) -> Result<Response, PageError> {
    let sealed = query_param(&uri, "state").unwrap_or_default();
    let code = query_param(&uri, "code");
    let error = query_param(&uri, "error");
    let finished = connect::finish(
        &state,
        &ctx,
        &integration,
        &sealed,
        code.as_deref(),
        error.as_deref(),
    )
    .await;
    let reference = crate::correlation::current();
    let (status, tenant_id, title, message) = match finished {
        Ok(Finished::Connected { tenant_id }) => (
            StatusCode::OK,
            Some(tenant_id),
            format!("Connected to {integration}"),
            format!("The connection to {integration} is made and stored securely."),
        ),
        Ok(Finished::NotConnected { reason }) => (
            StatusCode::BAD_REQUEST,
            None,
            format!("Not connected to {integration}"),
            format!(
                "The connection was not made: the provider answered \"{reason}\". Nothing was \
                 stored; start the connection again. Reference: {reference}"
            ),
        ),
        Err(Ok(refused)) => (
            StatusCode::BAD_REQUEST,
            None,
            refused.title.to_owned(),
            format!("{} Reference: {reference}", refused.message),
        ),
        Err(Err(error)) => return Err(error.into()),
    };
    let anonymous = Frame {
        tenant_name: "Tessera".to_owned(),
        slug: String::new(),
        base_path: super::base_path(&state.public_url).to_owned(),
    };
    let frame = tenant_id
        .and_then(|id| frame_of(&state, id))
        .unwrap_or(anonymous);
    render(
        &ConnectResultPage {
            frame: &frame,
            title: &title,
            message: &message,
        },
        status,
        vec![],
    )
}
