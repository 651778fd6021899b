//! Every failure a request can meet, and its one mapping to an HTTP status and a stable code
//! (API.md "Error codes"). Nothing here carries a secret: details are written for the caller.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("no such route")]
    RouteNotFound,
    /// With the methods the path does serve (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("the appid is not registered for this route")]
    UnknownApp,
    #[error("WeChat says the code is invalid or expired")]
    WeChatCodeInvalid,
    #[error("WeChat says the code was already used")]
    WeChatCodeUsed,
    #[error("WeChat refused the login of this user (high risk)")]
    WeChatUserBlocked,
    #[error("WeChat rate limit reached; retry later")]
    WeChatRateLimited,
    #[error("WeChat is unavailable; retry later")]
    WeChatUnavailable,
    #[error("WeChat answered with error {0}")]
    WeChatError(i64),
    #[error("missing, malformed or expired credential")]
    InvalidToken,
    #[error("the encrypted data does not open with this session")]
    DecryptFailed,
    #[error("the encrypted data belongs to another app or user")]
    WatermarkMismatch,
    #[error("the ticket is unknown, expired or already used")]
    TicketInvalid,
    #[error("the state is unknown, expired or already used")]
    StateInvalid,
    #[error("the return_url is not on the allow-list")]
    ReturnUrlNotAllowed,
    #[error("signature mismatch")]
    SignatureInvalid,
    #[error("the link has expired")]
    LinkExpired,
    #[error("the link was already used")]
    LinkUsed,
    #[error("not found")]
    NotFound,
    #[error("the person has no identity in the target app")]
    NotLinked,
    #[error("linking would give one person two openids of one app")]
    IdentityConflict,
    #[error("a web-view pass may only be confirmed by the mini-program identity that asked for it")]
    ConfirmMismatch,
    #[error("the confirm code is unknown, expired or already used")]
    ConfirmInvalid,
    #[error("this credential does not reach that resource")]
    Forbidden,
    /// A component app's authorization is gone (withdrawn, or its refresh token lost beyond
    /// recovery): its merchant must authorize the platform again.
    #[error("the app's authorization of the platform is gone; its owner must authorize again")]
    ReauthorizationRequired,
    #[error("the authorization code is unknown, expired or already used")]
    AuthCodeInvalid,
    #[error("the onboarding link is unknown, expired or already used")]
    OnboardingInvalid,
    /// The registry change conflicts with what is stored (an owner, the one pivot).
    #[error("{0}")]
    RegistryConflict(String),
    #[error("the service is busy; retry")]
    Busy,
    #[error("the store cannot be reached right now; retry")]
    StoreUnavailable,
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> u16 {
        use Error::*;
        match self {
            InvalidRequest(_) | WeChatCodeInvalid | WeChatCodeUsed | DecryptFailed | WatermarkMismatch
            | TicketInvalid | StateInvalid | ReturnUrlNotAllowed | LinkExpired | LinkUsed | ConfirmInvalid
            | AuthCodeInvalid | OnboardingInvalid => 400,
            InvalidToken => 401,
            SignatureInvalid | WeChatUserBlocked | ConfirmMismatch | Forbidden => 403,
            RouteNotFound | UnknownApp | NotFound | NotLinked => 404,
            MethodNotAllowed(_) => 405,
            IdentityConflict | RegistryConflict(_) => 409,
            PayloadTooLarge(_) => 413,
            WeChatRateLimited => 429,
            Internal(_) => 500,
            WeChatError(_) => 502,
            WeChatUnavailable | Busy | StoreUnavailable | ReauthorizationRequired => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidRequest(_) => "invalid_request",
            PayloadTooLarge(_) => "payload_too_large",
            RouteNotFound => "not_found",
            MethodNotAllowed(_) => "method_not_allowed",
            UnknownApp => "unknown_app",
            WeChatCodeInvalid => "wechat_code_invalid",
            WeChatCodeUsed => "wechat_code_used",
            WeChatUserBlocked => "wechat_user_blocked",
            WeChatRateLimited => "wechat_rate_limited",
            WeChatUnavailable => "wechat_unavailable",
            WeChatError(_) => "wechat_error",
            InvalidToken => "invalid_token",
            DecryptFailed => "decrypt_failed",
            WatermarkMismatch => "watermark_mismatch",
            TicketInvalid => "ticket_invalid",
            StateInvalid => "state_invalid",
            ReturnUrlNotAllowed => "return_url_not_allowed",
            SignatureInvalid => "signature_invalid",
            LinkExpired => "link_expired",
            LinkUsed => "link_used",
            NotFound => "not_found",
            NotLinked => "not_linked",
            IdentityConflict => "identity_conflict",
            ConfirmMismatch => "confirm_mismatch",
            ConfirmInvalid => "confirm_invalid",
            Forbidden => "forbidden",
            RegistryConflict(_) => "registry_conflict",
            ReauthorizationRequired => "reauthorization_required",
            AuthCodeInvalid => "auth_code_invalid",
            OnboardingInvalid => "onboarding_invalid",
            Busy => "busy",
            StoreUnavailable => "store_unavailable",
            Internal(_) => "internal",
        }
    }

    /// Seconds after which a retry may succeed (`Retry-After`), for errors that pass.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::StoreUnavailable | Error::Busy | Error::WeChatUnavailable => Some(1),
            Error::WeChatRateLimited => Some(60),
            // Only the merchant can mend it: ask again much later.
            Error::ReauthorizationRequired => Some(3600),
            _ => None,
        }
    }

    /// The text shown to the caller; internal details stay in the log.
    pub fn detail(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            // Contention that outlived the domain's retries: the caller may retry.
            StoreError::ConditionFailed { .. } | StoreError::Conflict => Error::Busy,
            StoreError::Unavailable(m) => {
                tracing::warn!(reason = m.as_str(), "store unavailable");
                Error::StoreUnavailable
            }
            StoreError::Invalid(m) => Error::Internal(format!("store rejected a request: {m}")),
        }
    }
}
