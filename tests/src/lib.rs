//! End-to-end tests live in `tests/e2e/`, one test binary (see CONVENTIONS: one binary keeps
//! link times down). This library is empty on purpose.
