//! Next-step codes and error codes, spelled as the product spells them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextStep {
    UsernameRequired,
    EmailOtpRequired,
    NewPasswordRequired,
    PasswordRequired,
    OtpRequired,
    MtanOtpRequired,
    SelectionRequired,
    App2faPollingOrOfflineRequired,
    SmsOtpRequired,
    FlowContinuationTokenRequired,
    AcknowledgeMessageRequired,
    SecretQuestionsAnswersRequired,
}

impl NextStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsernameRequired => "USERNAME_REQUIRED",
            Self::EmailOtpRequired => "EMAIL_OTP_REQUIRED",
            Self::NewPasswordRequired => "NEW_PASSWORD_REQUIRED",
            Self::PasswordRequired => "PASSWORD_REQUIRED",
            Self::OtpRequired => "OTP_REQUIRED",
            Self::MtanOtpRequired => "MTAN_OTP_REQUIRED",
            Self::SelectionRequired => "SELECTION_REQUIRED",
            Self::App2faPollingOrOfflineRequired => "APP_2FA_POLLING_OR_OFFLINE_REQUIRED",
            Self::SmsOtpRequired => "SMS_OTP_REQUIRED",
            Self::FlowContinuationTokenRequired => "FLOW_CONTINUATION_TOKEN_REQUIRED",
            Self::AcknowledgeMessageRequired => "ACKNOWLEDGE_MESSAGE_REQUIRED",
            Self::SecretQuestionsAnswersRequired => "SECRET_QUESTIONS_ANSWERS_REQUIRED",
        }
    }
}

/// Error codes of the API: of flow calls, and of the calls around flows (protected self-service, devices,
/// administration). The HTTP status is not decided here: for flows it follows from the outcome (retry → 400,
/// flow ended → 403) so the matrix of the product's documentation holds in one place; for the others the
/// server's `errors.rs` maps each error in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    UnexpectedCall,
    ConcurrentAccess,
    FlowSessionExpired,
    UserNotFound,
    UserInvalid,
    UserLocked,
    EmailOtpWrong,
    EmailOtpExpired,
    ResendLimitReached,
    PasswordPolicyViolated,
    UsernamePasswordWrong,
    UserTemporarilyLocked,
    AuthenticationFailed,
    OtpWrong,
    MtanOtpWrong,
    MtanOtpExpired,
    SecondFactorMissing,
    OptionNotAvailable,
    App2faDenied,
    App2faExpired,
    App2faCodeWrong,
    TooManyUnlocks,
    SmsOtpWrong,
    SmsOtpExpired,
    UserRoleMissing,
    NotAuthorized,
    FlowContinuationTokenInvalid,
    SecretAnswersWrong,
    PostalAddressMissing,
    OldPasswordWrong,
    TotpAlreadyEnrolled,
    NoPendingEnrollment,
    DeviceNotAuthenticated,
    ActivationInvalid,
    ApprovalNotFound,
    ApprovalNotPending,
    NumberMismatch,
    ReauthenticationRequired,
    PasswordWrong,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnexpectedCall => "UNEXPECTED_CALL",
            Self::ConcurrentAccess => "CONCURRENT_ACCESS",
            Self::FlowSessionExpired => "FLOW_SESSION_EXPIRED",
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::UserInvalid => "USER_INVALID",
            Self::UserLocked => "USER_LOCKED",
            Self::EmailOtpWrong => "EMAIL_OTP_WRONG",
            Self::EmailOtpExpired => "EMAIL_OTP_EXPIRED",
            Self::ResendLimitReached => "RESEND_LIMIT_REACHED",
            Self::PasswordPolicyViolated => "PASSWORD_POLICY_VIOLATED",
            Self::UsernamePasswordWrong => "USERNAME_PASSWORD_WRONG",
            Self::UserTemporarilyLocked => "USER_TEMPORARILY_LOCKED",
            Self::AuthenticationFailed => "AUTHENTICATION_FAILED",
            Self::OtpWrong => "OTP_WRONG",
            Self::MtanOtpWrong => "MTAN_OTP_WRONG",
            Self::MtanOtpExpired => "MTAN_OTP_EXPIRED",
            Self::SecondFactorMissing => "SECOND_FACTOR_MISSING",
            Self::OptionNotAvailable => "OPTION_NOT_AVAILABLE",
            Self::App2faDenied => "APP_2FA_DENIED",
            Self::App2faExpired => "APP_2FA_EXPIRED",
            Self::App2faCodeWrong => "APP_2FA_CODE_WRONG",
            Self::TooManyUnlocks => "TOO_MANY_UNLOCKS",
            Self::SmsOtpWrong => "SMS_OTP_WRONG",
            Self::SmsOtpExpired => "SMS_OTP_EXPIRED",
            Self::UserRoleMissing => "USER_ROLE_MISSING",
            Self::NotAuthorized => "NOT_AUTHORIZED",
            Self::FlowContinuationTokenInvalid => "FLOW_CONTINUATION_TOKEN_INVALID",
            Self::SecretAnswersWrong => "SECRET_ANSWERS_WRONG",
            Self::PostalAddressMissing => "POSTAL_ADDRESS_MISSING",
            Self::OldPasswordWrong => "OLD_PASSWORD_WRONG",
            Self::TotpAlreadyEnrolled => "TOTP_ALREADY_ENROLLED",
            Self::NoPendingEnrollment => "NO_PENDING_ENROLLMENT",
            Self::DeviceNotAuthenticated => "DEVICE_NOT_AUTHENTICATED",
            Self::ActivationInvalid => "ACTIVATION_INVALID",
            Self::ApprovalNotFound => "APPROVAL_NOT_FOUND",
            Self::ApprovalNotPending => "APPROVAL_NOT_PENDING",
            Self::NumberMismatch => "NUMBER_MISMATCH",
            Self::ReauthenticationRequired => "REAUTHENTICATION_REQUIRED",
            Self::PasswordWrong => "PASSWORD_WRONG",
        }
    }
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub code: ErrorCode,
    /// JSON pointer into the request body, e.g. `/newPassword`.
    pub pointer: Option<&'static str>,
    /// Machine-readable detail, e.g. `SAME_AS_OLD`.
    pub detail: Option<&'static str>,
}

impl FlowError {
    pub fn new(code: ErrorCode) -> Self {
        Self { code, pointer: None, detail: None }
    }

    pub fn at(code: ErrorCode, pointer: &'static str) -> Self {
        Self { code, pointer: Some(pointer), detail: None }
    }
}

/// What a call did to the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200; `None` means the flow is complete.
    Continue(Option<NextStep>),
    /// 400 with `meta.nextStep`: wrong input, try again.
    Retry { next: NextStep, errors: Vec<FlowError> },
    /// 400: the call does not fit the current step; the flow goes on unchanged.
    Unexpected,
    /// 403: the flow is over.
    Terminated(Vec<FlowError>),
}
