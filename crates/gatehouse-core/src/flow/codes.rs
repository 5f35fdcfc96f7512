//! Next-step codes and error codes, spelled as the product spells them.

use std::borrow::Cow;

use serde::Serialize;

/// Declares a code enum with its spelling: `ALL` and `as_str` come from the same list, so no code can be
/// missing from either (the OpenAPI document lists `ALL`).
macro_rules! codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
    };
}

codes! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum NextStep {
        UsernameRequired = "USERNAME_REQUIRED",
        EmailOtpRequired = "EMAIL_OTP_REQUIRED",
        NewPasswordRequired = "NEW_PASSWORD_REQUIRED",
        PasswordRequired = "PASSWORD_REQUIRED",
        OtpRequired = "OTP_REQUIRED",
        MtanOtpRequired = "MTAN_OTP_REQUIRED",
        SelectionRequired = "SELECTION_REQUIRED",
        App2faPollingOrOfflineRequired = "APP_2FA_POLLING_OR_OFFLINE_REQUIRED",
        SmsOtpRequired = "SMS_OTP_REQUIRED",
        FlowContinuationTokenRequired = "FLOW_CONTINUATION_TOKEN_REQUIRED",
        AcknowledgeMessageRequired = "ACKNOWLEDGE_MESSAGE_REQUIRED",
        SecretQuestionsAnswersRequired = "SECRET_QUESTIONS_ANSWERS_REQUIRED",
        UserDataRegistrationRequired = "USER_DATA_REGISTRATION_REQUIRED",
        UserDataRegistrationPossible = "USER_DATA_REGISTRATION_POSSIBLE",
        EmailVerificationRequired = "EMAIL_VERIFICATION_REQUIRED",
        PhoneNumberVerificationRequired = "PHONE_NUMBER_VERIFICATION_REQUIRED",
        PasswordRegistrationRequired = "PASSWORD_REGISTRATION_REQUIRED",
        App2faActivationRequired = "APP_2FA_ACTIVATION_REQUIRED",
    }
}

codes! {
    /// Error codes of the API: of flow calls, and of the calls around flows (protected self-service, devices,
    /// administration). The HTTP status is not decided here: for flows it follows from the outcome (retry → 400,
    /// flow ended → 403) so the matrix of the product's documentation holds in one place; for the others the
    /// server's `errors.rs` maps each error in one place.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum ErrorCode {
        UnexpectedCall = "UNEXPECTED_CALL",
        ConcurrentAccess = "CONCURRENT_ACCESS",
        FlowSessionExpired = "FLOW_SESSION_EXPIRED",
        UserNotFound = "USER_NOT_FOUND",
        UserInvalid = "USER_INVALID",
        UserLocked = "USER_LOCKED",
        EmailOtpWrong = "EMAIL_OTP_WRONG",
        EmailOtpExpired = "EMAIL_OTP_EXPIRED",
        ResendLimitReached = "RESEND_LIMIT_REACHED",
        PasswordPolicyViolated = "PASSWORD_POLICY_VIOLATED",
        UsernamePasswordWrong = "USERNAME_PASSWORD_WRONG",
        UserTemporarilyLocked = "USER_TEMPORARILY_LOCKED",
        AuthenticationFailed = "AUTHENTICATION_FAILED",
        OtpWrong = "OTP_WRONG",
        MtanOtpWrong = "MTAN_OTP_WRONG",
        MtanOtpExpired = "MTAN_OTP_EXPIRED",
        SecondFactorMissing = "SECOND_FACTOR_MISSING",
        OptionNotAvailable = "OPTION_NOT_AVAILABLE",
        App2faDenied = "APP_2FA_DENIED",
        App2faExpired = "APP_2FA_EXPIRED",
        App2faCodeWrong = "APP_2FA_CODE_WRONG",
        TooManyUnlocks = "TOO_MANY_UNLOCKS",
        SmsOtpWrong = "SMS_OTP_WRONG",
        SmsOtpExpired = "SMS_OTP_EXPIRED",
        UserRoleMissing = "USER_ROLE_MISSING",
        NotAuthorized = "NOT_AUTHORIZED",
        FlowContinuationTokenInvalid = "FLOW_CONTINUATION_TOKEN_INVALID",
        SecretAnswersWrong = "SECRET_ANSWERS_WRONG",
        PostalAddressMissing = "POSTAL_ADDRESS_MISSING",
        OldPasswordWrong = "OLD_PASSWORD_WRONG",
        TotpAlreadyEnrolled = "TOTP_ALREADY_ENROLLED",
        NoPendingEnrollment = "NO_PENDING_ENROLLMENT",
        DeviceNotAuthenticated = "DEVICE_NOT_AUTHENTICATED",
        ActivationInvalid = "ACTIVATION_INVALID",
        ApprovalNotFound = "APPROVAL_NOT_FOUND",
        ApprovalNotPending = "APPROVAL_NOT_PENDING",
        NumberMismatch = "NUMBER_MISMATCH",
        ReauthenticationRequired = "REAUTHENTICATION_REQUIRED",
        PasswordWrong = "PASSWORD_WRONG",
        ItemUnknown = "ITEM_UNKNOWN",
        ItemRequired = "ITEM_REQUIRED",
        ItemInvalid = "ITEM_INVALID",
        ItemNotUnique = "ITEM_NOT_UNIQUE",
        ItemsDiffer = "ITEMS_DIFFER",
        CaptchaRequired = "CAPTCHA_REQUIRED",
        CaptchaInvalid = "CAPTCHA_INVALID",
        PhoneOtpWrong = "PHONE_OTP_WRONG",
        PhoneOtpExpired = "PHONE_OTP_EXPIRED",
        App2faActivationExpired = "APP_2FA_ACTIVATION_EXPIRED",
        RegistrationConflict = "REGISTRATION_CONFLICT",
    }
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub code: ErrorCode,
    /// JSON pointer into the request body, e.g. `/newPassword`.
    pub pointer: Option<Cow<'static, str>>,
    /// Machine-readable detail, e.g. `SAME_AS_OLD`.
    pub detail: Option<&'static str>,
}

impl FlowError {
    pub fn new(code: ErrorCode) -> Self {
        Self { code, pointer: None, detail: None }
    }

    pub fn at(code: ErrorCode, pointer: impl Into<Cow<'static, str>>) -> Self {
        Self { code, pointer: Some(pointer.into()), detail: None }
    }

    /// An error about a data item (`/<name>`) with a detail.
    pub fn item(code: ErrorCode, name: &str, detail: Option<&'static str>) -> Self {
        Self { code, pointer: Some(Cow::Owned(format!("/{name}"))), detail }
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
