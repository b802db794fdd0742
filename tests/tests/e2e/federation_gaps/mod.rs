//! The gaps of per-tenant federation closed after it first landed (issue 19): the access
//! token of seed 002's `POST /auth/callback`, several providers per tenant, a `redirect_path`
//! of one's own, erasure releasing upstream links, the sign-in page after a wrong password,
//! the invitation page, and the order of the admin API's checks. The upstream is another
//! tenant of the same server, as in `federation/`, whose helpers these reuse.

mod admin_order;
mod erasure;
mod frontend_token;
mod invitation;
mod providers;
mod redirect_path;
