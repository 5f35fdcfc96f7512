//! The configuration of every step kind. One enum, tagged by `type`, used by every flow kind; which kinds may
//! hold a step is declared next to its behaviour (`flow::steps::allowed_kinds`) and checked by `validate`.

use serde::{Deserialize, Serialize};

use super::registration::{
    ActiveAuthMethodStep, App2faActivationStep, PasswordRegistrationStep, PhoneVerificationStep,
    RegistrationVerificationStep, RoleAssignmentStep, UserDataRegistrationStep, UserPersistingStep,
    UsernameGenerationStep,
};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Username and password (authentication).
    Password(PasswordStep),
    /// Username only: identifies the user for the steps that follow (authentication).
    Username(UsernameStep),
    /// Offers options, each a list of steps; by default the user's second factors.
    #[serde(alias = "factor-selection")]
    Selection(SelectionStep),
    /// A code from the user's TOTP app.
    Totp(TotpStep),
    /// A code sent by SMS to the user's phone, as a second factor.
    Mtan(MtanStep),
    /// The Gatehouse authenticator: push approval with number matching, or an offline QR code.
    #[serde(rename = "app-2fa", alias = "app-2fa-approval")]
    App2fa(App2faStep),
    /// The user must have these roles (non-interactive).
    RequiredRole(RequiredRoleStep),
    /// Username, with the flow's restrictions and stealth mode (public self-service).
    UserIdentification(UserIdentificationStep),
    EmailIdentityVerification(EmailVerificationStep),
    SmsIdentityVerification(SmsVerificationStep),
    SetPassword(SetPasswordStep),
    EmailNotification(EmailNotificationStep),
    /// Public self-service: unlocks the verified user. Self-registration: the account will be stored unlocked.
    #[serde(alias = "user-unlock")]
    UnlockUser(UnlockUserStep),
    /// Mails a single-use link that continues in `target_flow` (non-interactive).
    SendEmailLink(SendEmailLinkStep),
    /// The first step of a flow reached through an email link: takes the link's token, identifies its user.
    FlowContinuation(FlowContinuationStep),
    /// Shows a message the user confirms (`messageId`, `serverMessage`).
    AcknowledgeMessage(AcknowledgeMessageStep),
    /// Asks some of the user's secret questions; stealth like the other identity verifications.
    SecretQuestionsIdentityVerification(SecretQuestionsStep),
    /// Orders a letter with a new one-time password (non-interactive) and, by default, ends the flow.
    PasswordLetterOrder(PasswordLetterStep),
    /// Data items the visitor fills in, with validators and an optional CAPTCHA (self-registration).
    UserDataRegistration(UserDataRegistrationStep),
    UsernameGeneration(UsernameGenerationStep),
    /// A code to the address the visitor entered (self-registration).
    EmailVerification(RegistrationVerificationStep),
    PhoneNumberVerification(PhoneVerificationStep),
    PasswordRegistration(PasswordRegistrationStep),
    RoleAssignment(RoleAssignmentStep),
    ActiveAuthMethod(ActiveAuthMethodStep),
    /// Enrolls the authenticator for the persisted account (self-registration).
    #[serde(rename = "app-2fa-activation")]
    App2faActivation(App2faActivationStep),
    UserPersisting(UserPersistingStep),
}

impl Step {
    /// The `type` of the step as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::Username(_) => "username",
            Self::Selection(_) => "selection",
            Self::Totp(_) => "totp",
            Self::Mtan(_) => "mtan",
            Self::App2fa(_) => "app-2fa",
            Self::RequiredRole(_) => "required-role",
            Self::UserIdentification(_) => "user-identification",
            Self::EmailIdentityVerification(_) => "email-identity-verification",
            Self::SmsIdentityVerification(_) => "sms-identity-verification",
            Self::SetPassword(_) => "set-password",
            Self::EmailNotification(_) => "email-notification",
            Self::UnlockUser(_) => "unlock-user",
            Self::SendEmailLink(_) => "send-email-link",
            Self::FlowContinuation(_) => "flow-continuation",
            Self::AcknowledgeMessage(_) => "acknowledge-message",
            Self::SecretQuestionsIdentityVerification(_) => "secret-questions-identity-verification",
            Self::PasswordLetterOrder(_) => "password-letter-order",
            Self::UserDataRegistration(_) => "user-data-registration",
            Self::UsernameGeneration(_) => "username-generation",
            Self::EmailVerification(_) => "email-verification",
            Self::PhoneNumberVerification(_) => "phone-number-verification",
            Self::PasswordRegistration(_) => "password-registration",
            Self::RoleAssignment(_) => "role-assignment",
            Self::ActiveAuthMethod(_) => "active-auth-method",
            Self::App2faActivation(_) => "app-2fa-activation",
            Self::UserPersisting(_) => "user-persisting",
        }
    }

    /// Every step of `steps`, options' steps included, with its key path (`steps[1].options[0].steps[0]`).
    pub fn walk(steps: &[Step]) -> Vec<(String, &Step)> {
        let mut out = Vec::new();
        for (j, step) in steps.iter().enumerate() {
            out.push((format!("steps[{j}]"), step));
            if let Self::Selection(s) = step {
                for (k, option) in s.options.iter().enumerate() {
                    for (m, inner) in option.steps.iter().enumerate() {
                        out.push((format!("steps[{j}].options[{k}].steps[{m}]"), inner));
                    }
                }
            }
        }
        out
    }

    /// Factor steps that need a real user with the factor enrolled (they are not identity verifications).
    pub fn is_factor(&self) -> bool {
        matches!(self, Self::Totp(_) | Self::Mtan(_) | Self::App2fa(_))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordStep {}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsernameStep {}

/// A choice among options. Without `options`, the options are the second factors: `APP_2FA`, `OATH_OTP`,
/// `MTAN`. An option is offered when the user has what its steps need (in public self-service before the
/// identity is verified, every option is offered, so the list tells nothing about the account).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionStep {
    pub options: Vec<SelectionOption>,
    /// No option available ends the flow (`SECOND_FACTOR_MISSING`); otherwise the step is skipped.
    pub required: bool,
    /// With a single option available, go straight into it.
    pub auto_select_only_option: bool,
}

impl Default for SelectionStep {
    fn default() -> Self {
        Self { options: SelectionOption::second_factors(), required: false, auto_select_only_option: true }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionOption {
    /// The option id of `selection/options/{id}/select`, e.g. `MTAN`.
    pub id: String,
    pub steps: Vec<Step>,
}

impl SelectionOption {
    pub fn second_factors() -> Vec<Self> {
        vec![
            Self { id: "APP_2FA".into(), steps: vec![Step::App2fa(App2faStep::default())] },
            Self { id: "OATH_OTP".into(), steps: vec![Step::Totp(TotpStep::default())] },
            Self { id: "MTAN".into(), steps: vec![Step::Mtan(MtanStep::default())] },
        ]
    }
}

/// Settings live in `[authentication.totp]`: one TOTP credential per user, one counter.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpStep {}

/// Settings live in `[authentication.mtan]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtanStep {}

/// Approval with the Gatehouse authenticator (push or offline QR). A factor step: it needs a real user, so
/// before any identity verification it is only safe with the restrictions' feedback on.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct App2faStep {
    /// What the device shows the user is approving: `login`, `unlock`, `password-reset`; unset: `login` in
    /// authentication flows, `unlock` elsewhere.
    pub purpose: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequiredRoleStep {
    /// Every one of these roles is needed (`USER_ROLE_MISSING` otherwise).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserIdentificationStep {}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailVerificationStep {
    /// Context data item that holds the address.
    pub email_item: String,
    pub otp: OtpConfig,
    /// Wrong answers allowed in one flow; the last one ends the flow with 403.
    pub max_failed_attempts: u32,
    /// Resends allowed in one flow.
    pub max_resends: u32,
    /// Failed-attempt counter this step increments on the user.
    pub method_id: String,
    /// Mail template of the code (`email-otp`, or `password-reset-otp` for reset wording).
    pub template: String,
}

impl Default for EmailVerificationStep {
    fn default() -> Self {
        Self {
            template: "email-otp".into(),
            email_item: "email".into(),
            otp: OtpConfig::default(),
            max_failed_attempts: 3,
            max_resends: 3,
            method_id: "EMAIL_OTP".into(),
        }
    }
}

/// A code by SMS to the phone number on record; stealth like the email step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsVerificationStep {
    /// Context data item that holds the phone number.
    pub phone_item: String,
    pub otp: OtpConfig,
    pub max_failed_attempts: u32,
    pub max_resends: u32,
    pub method_id: String,
    /// SMS template of the code.
    pub template: String,
}

impl Default for SmsVerificationStep {
    fn default() -> Self {
        Self {
            template: "sms-otp".into(),
            phone_item: "phone".into(),
            otp: OtpConfig { length: 8, alphabet: "0123456789".into(), validity_seconds: 300 },
            max_failed_attempts: 3,
            max_resends: 2,
            method_id: "SMS_OTP".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    pub length: usize,
    pub alphabet: String,
    pub validity_seconds: u64,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self { length: 8, alphabet: "0123456789".into(), validity_seconds: 600 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SetPasswordStep {
    /// Counter reset when the password is set (the old password's failures no longer matter).
    pub password_method_id: String,
}

impl Default for SetPasswordStep {
    fn default() -> Self {
        Self { password_method_id: "PASSWORD".into() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailNotificationStep {
    pub email_item: String,
    /// Built-in message template name.
    pub template: String,
}

impl Default for EmailNotificationStep {
    fn default() -> Self {
        Self { email_item: "email".into(), template: "password-changed".into() }
    }
}

/// Unlocks the user (non-interactive), within the maximum number of unlocks, resetting these counters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnlockUserStep {
    pub counters_to_reset: Vec<String>,
}

impl Default for UnlockUserStep {
    fn default() -> Self {
        Self { counters_to_reset: vec!["PASSWORD".into(), "OLD_PASSWORD".into()] }
    }
}

/// Mails a link to `<server.public_url>/ui/app/self-service/flow/<target_flow>?token=…`; the token (256 random
/// bits, stored as a keyed hash) works once, for `validity_seconds`, in `target_flow` only.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendEmailLinkStep {
    pub target_flow: String,
    pub email_item: String,
    pub template: String,
    pub validity_seconds: u64,
}

impl Default for SendEmailLinkStep {
    fn default() -> Self {
        Self {
            target_flow: String::new(),
            email_item: "email".into(),
            template: "reset-link".into(),
            validity_seconds: 1800,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowContinuationStep {}

/// A message for the user to confirm: `message_id` names a text the client shows (its own translation),
/// `server_message` is a text from the server; at least one is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcknowledgeMessageStep {
    pub message_id: Option<String>,
    pub server_message: Option<String>,
}

/// Asks `questions_asked` of the user's answered questions (chosen at random); all answers must be right.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretQuestionsStep {
    pub questions_asked: usize,
    /// Wrong answer sets in one flow; the last ends the flow (the product's default: 1).
    pub max_failed_attempts: u32,
    pub method_id: String,
}

impl Default for SecretQuestionsStep {
    fn default() -> Self {
        Self { questions_asked: 2, max_failed_attempts: 1, method_id: "SECRET_QUESTIONS".into() }
    }
}

/// A letter to the postal address on record with a fresh one-time password, which replaces the user's password
/// at once (the letter is the only place it exists). The letter goes to the letter outbox as a PDF.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordLetterStep {
    /// Context item with the recipient's name (default: the username).
    pub name_item: String,
    /// Context item with the postal address, lines separated by newlines or `;`.
    pub address_item: String,
    pub template: String,
    pub password_length: usize,
    /// Complete the flow after ordering (with `attributes.letterOrdered`); otherwise go on with the next step.
    pub ends_flow: bool,
}

impl Default for PasswordLetterStep {
    fn default() -> Self {
        Self {
            name_item: "postal_name".into(),
            address_item: "postal_address".into(),
            template: "password-letter".into(),
            password_length: 12,
            ends_flow: true,
        }
    }
}
