//! The words of the hosted login page, in Chinese and English.

use ciam_core::Lang;

/// Every text the login, change and logout pages show.
#[derive(Debug)]
pub(crate) struct Texts {
    pub sign_in_title: &'static str,
    pub to_continue: &'static str,
    pub mobile: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub other_language: &'static str,
    pub change_title: &'static str,
    pub expired: &'static str,
    pub warn: &'static str,
    pub new_password: &'static str,
    pub confirm: &'static str,
    pub change: &'static str,
    pub skip: &'static str,
    pub mismatch: &'static str,
    pub unbound_form: &'static str,
    pub request_gone: &'static str,
    pub unknown_client: &'static str,
    pub unknown_redirect: &'static str,
    pub error_title: &'static str,
    pub sign_out_title: &'static str,
    pub sign_out_question: &'static str,
    pub sign_out: &'static str,
    pub signed_out: &'static str,
    pub busy: &'static str,
    pub bad_request: &'static str,
}

const EN: Texts = Texts {
    sign_in_title: "Sign in",
    to_continue: "to continue to {0}",
    mobile: "Mobile number",
    password: "Password",
    sign_in: "Sign in",
    other_language: "中文",
    change_title: "Change your password",
    expired: "Your password has expired. Choose a new one to continue.",
    warn: "Your password will expire soon. Choose a new one now, or later.",
    new_password: "New password",
    confirm: "New password, again",
    change: "Change password",
    skip: "Not now",
    mismatch: "The two new passwords differ.",
    unbound_form: "This page has expired, or was opened in another browser or from another site. Go back to the app and sign in again.",
    request_gone: "This sign-in has expired. Go back to the app and start again.",
    unknown_client: "This app is not registered, or it is disabled.",
    unknown_redirect: "This app did not register that return address, so you cannot be sent back to it.",
    error_title: "Cannot sign in",
    sign_out_title: "Sign out?",
    sign_out_question: "Sign out of every app in this browser?",
    sign_out: "Sign out",
    signed_out: "You are signed out.",
    busy: "The server cannot answer right now. Try again in a moment.",
    bad_request: "This request cannot be read.",
};

const ZH: Texts = Texts {
    sign_in_title: "登录",
    to_continue: "以继续使用 {0}",
    mobile: "手机号",
    password: "密码",
    sign_in: "登录",
    other_language: "English",
    change_title: "修改密码",
    expired: "您的密码已过期，请设置新密码后继续。",
    warn: "您的密码即将过期。您可以现在修改，也可以稍后再改。",
    new_password: "新密码",
    confirm: "再次输入新密码",
    change: "修改密码",
    skip: "暂不修改",
    mismatch: "两次输入的新密码不一致。",
    unbound_form: "此页面已过期，或是在另一个浏览器、另一个网站中打开的。请返回应用重新登录。",
    request_gone: "本次登录已过期，请返回应用重新开始。",
    unknown_client: "该应用未注册或已停用。",
    unknown_redirect: "该应用未登记此返回地址，无法将您送回。",
    error_title: "无法登录",
    sign_out_title: "退出登录？",
    sign_out_question: "要在此浏览器中退出所有应用吗？",
    sign_out: "退出登录",
    signed_out: "您已退出登录。",
    busy: "服务器暂时无法响应，请稍后再试。",
    bad_request: "无法读取此请求。",
};

/// The texts in `lang`.
pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}
