//! What every page the server draws shares, apart from what any one page
//! shows: the HTML document and its assets ([`layout`]), forms and their
//! refusals ([`forms`]), the token that binds a form to its session
//! ([`csrf`]), and the language a page speaks ([`lang`]). The console is
//! drawn with it; a hosted login page would be too.

pub(crate) mod csrf;
pub(crate) mod forms;
pub(crate) mod lang;
pub(crate) mod layout;
