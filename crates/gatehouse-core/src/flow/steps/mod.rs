//! Every step kind, one module each: what it accepts, what entering it does, and which flow kinds may hold it.
//! The engine knows steps only through [`enter`], [`handle`] and [`allowed_kinds`].

mod acknowledge;
mod app_2fa;
mod email_link;
mod email_notification;
mod email_verification;
mod flow_continuation;
mod password;
mod password_letter;
mod registration;
mod required_role;
mod secret_questions;
mod selection;
mod sent_otp;
mod set_password;
mod sms_verification;
mod totp;
mod unlock_user;
mod user_identification;
mod username;

use std::collections::BTreeMap;

use super::engine::{Action, Ctx, EngineError};
use crate::config::Step;
use crate::flow::FlowKind;
use crate::flow::codes::{NextStep, Outcome};
use crate::messages;
use crate::outbox;
use crate::ports::Effect;
use crate::user::User;

pub use totp::TOTP_SEAL_CONTEXT;

/// What entering a step did.
pub(crate) enum Enter {
    /// An interactive step waits for a call (or the flow ended): answer with this.
    Wait(Outcome),
    /// A non-interactive step is done: go on with the next one.
    Done,
    /// The step moved the flow itself (into a selection's option): enter whatever is current now.
    Moved,
    /// The step finished the flow's work: it completes here, whatever steps follow.
    End,
}

/// The flow kinds that may hold `step`; `config check` refuses any other placement.
pub fn allowed_kinds(step: &Step) -> &'static [FlowKind] {
    match step {
        Step::Password(_) => password::KINDS,
        Step::Username(_) => username::KINDS,
        Step::Selection(_) => selection::KINDS,
        Step::Totp(_) => totp::KINDS,
        Step::Mtan(_) => sent_otp::MTAN_KINDS,
        Step::App2fa(_) => app_2fa::KINDS,
        Step::RequiredRole(_) => required_role::KINDS,
        Step::UserIdentification(_) => user_identification::KINDS,
        Step::EmailIdentityVerification(_) => email_verification::KINDS,
        Step::SmsIdentityVerification(_) => sms_verification::KINDS,
        Step::SetPassword(_) => set_password::KINDS,
        Step::EmailNotification(_) => email_notification::KINDS,
        Step::UnlockUser(_) => unlock_user::KINDS,
        Step::SendEmailLink(_) => email_link::KINDS,
        Step::FlowContinuation(_) => flow_continuation::KINDS,
        Step::AcknowledgeMessage(_) => acknowledge::KINDS,
        Step::SecretQuestionsIdentityVerification(_) => secret_questions::KINDS,
        Step::PasswordLetterOrder(_) => password_letter::KINDS,
        Step::UserDataRegistration(_)
        | Step::UsernameGeneration(_)
        | Step::EmailVerification(_)
        | Step::PhoneNumberVerification(_)
        | Step::PasswordRegistration(_)
        | Step::RoleAssignment(_)
        | Step::ActiveAuthMethod(_)
        | Step::App2faActivation(_)
        | Step::UserPersisting(_) => registration::KINDS,
    }
}

pub(crate) async fn enter(ctx: &mut Ctx<'_>, step: &Step) -> Result<Enter, EngineError> {
    Ok(match step {
        Step::Password(_) => Enter::Wait(password::NEXT),
        Step::Username(_) | Step::UserIdentification(_) => Enter::Wait(user_identification::NEXT),
        Step::SetPassword(_) => Enter::Wait(set_password::NEXT),
        Step::Selection(cfg) => return ctx.enter_selection(cfg).await,
        Step::Totp(_) => Enter::Wait(ctx.enter_totp()),
        Step::Mtan(_) => Enter::Wait(ctx.enter_mtan().await?),
        Step::App2fa(cfg) => Enter::Wait(ctx.enter_app(cfg).await?),
        Step::EmailIdentityVerification(cfg) => Enter::Wait(ctx.enter_email_otp(cfg).await?),
        Step::SmsIdentityVerification(cfg) => Enter::Wait(ctx.enter_sms_otp(cfg).await?),
        Step::RequiredRole(cfg) => return ctx.required_role(cfg).await,
        Step::EmailNotification(cfg) => {
            ctx.send_notification(cfg).await?;
            Enter::Done
        }
        Step::UnlockUser(_) if ctx.kind() == FlowKind::SelfRegistration => {
            ctx.unlock_draft()?;
            Enter::Done
        }
        Step::UnlockUser(cfg) => return ctx.unlock_user(cfg).await,
        Step::SendEmailLink(cfg) => return ctx.send_email_link(cfg).await,
        Step::FlowContinuation(_) => Enter::Wait(flow_continuation::NEXT),
        Step::AcknowledgeMessage(cfg) => Enter::Wait(ctx.show_message(cfg)),
        Step::SecretQuestionsIdentityVerification(cfg) => Enter::Wait(ctx.enter_secret_questions(cfg).await?),
        Step::PasswordLetterOrder(cfg) => return ctx.order_letter(cfg).await,
        Step::UserDataRegistration(cfg) => Enter::Wait(ctx.enter_data(cfg)?),
        Step::UsernameGeneration(cfg) => return ctx.generate_username(cfg).await,
        Step::EmailVerification(cfg) => Enter::Wait(ctx.enter_verification(&cfg.into()).await?),
        Step::PhoneNumberVerification(cfg) => Enter::Wait(ctx.enter_verification(&cfg.into()).await?),
        Step::PasswordRegistration(_) => Enter::Wait(Outcome::Continue(Some(NextStep::PasswordRegistrationRequired))),
        Step::RoleAssignment(cfg) => {
            ctx.assign_roles(cfg)?;
            Enter::Done
        }
        Step::ActiveAuthMethod(cfg) => {
            ctx.set_auth_method(cfg)?;
            Enter::Done
        }
        Step::App2faActivation(cfg) => Enter::Wait(ctx.enter_activation(cfg).await?),
        Step::UserPersisting(cfg) => return ctx.persist(cfg).await,
    })
}

/// What `step` waits for, as entering it answered, without doing anything again (no code is sent, no request
/// pushed): the number and offline challenge, questions, options and message come from the step's state.
pub(crate) fn describe(ctx: &mut Ctx<'_>, step: &Step) -> Result<Outcome, EngineError> {
    let waiting = |next| Outcome::Continue(Some(next));
    Ok(match step {
        Step::Password(_) => password::NEXT,
        Step::Username(_) | Step::UserIdentification(_) => user_identification::NEXT,
        Step::SetPassword(_) => set_password::NEXT,
        Step::FlowContinuation(_) => flow_continuation::NEXT,
        Step::Selection(_) => ctx.retrieve_options(),
        Step::Totp(_) => waiting(NextStep::OtpRequired),
        Step::Mtan(_) => waiting(NextStep::MtanOtpRequired),
        Step::App2fa(_) => ctx.describe_app()?,
        Step::EmailIdentityVerification(_) => waiting(NextStep::EmailOtpRequired),
        Step::SmsIdentityVerification(_) => waiting(NextStep::SmsOtpRequired),
        Step::AcknowledgeMessage(cfg) => ctx.show_message(cfg),
        Step::SecretQuestionsIdentityVerification(_) => ctx.describe_questions(),
        Step::UserDataRegistration(cfg) => ctx.new_captcha(cfg)?,
        Step::EmailVerification(_) => waiting(NextStep::EmailVerificationRequired),
        Step::PhoneNumberVerification(_) => waiting(NextStep::PhoneNumberVerificationRequired),
        Step::PasswordRegistration(_) => waiting(NextStep::PasswordRegistrationRequired),
        Step::App2faActivation(_) => waiting(NextStep::App2faActivationRequired),
        // A flow never waits at a step that runs by itself.
        Step::RequiredRole(_)
        | Step::EmailNotification(_)
        | Step::UnlockUser(_)
        | Step::SendEmailLink(_)
        | Step::PasswordLetterOrder(_)
        | Step::UsernameGeneration(_)
        | Step::RoleAssignment(_)
        | Step::ActiveAuthMethod(_)
        | Step::UserPersisting(_) => Outcome::Unexpected,
    })
}

/// Handles `action` at `step`; a call the step does not take is `UNEXPECTED_CALL` and changes nothing.
pub(crate) async fn handle(ctx: &mut Ctx<'_>, step: &Step, action: Action) -> Result<Outcome, EngineError> {
    match (step, action) {
        (Step::Password(_), Action::CheckPassword { username, password }) => {
            ctx.check_password(username.as_deref(), password).await
        }
        (Step::Username(_), Action::Identify { username }) => ctx.identify_for_login(&username).await,
        (Step::UserIdentification(_), Action::Identify { username }) => ctx.identify(&username).await,
        (Step::Selection(_), Action::RetrieveOptions) => Ok(ctx.retrieve_options()),
        (Step::Selection(cfg), Action::SelectOption { id }) => ctx.select_option(cfg, &id).await,
        (Step::Totp(_), Action::CheckTotp { otp }) => ctx.check_totp(&otp).await,
        (Step::Mtan(_), Action::CheckMtan { otp }) => ctx.check_mtan(&otp).await,
        (Step::Mtan(_), Action::ResendMtan) => ctx.resend_mtan().await,
        (Step::App2fa(_), Action::PollApp) => ctx.poll_app().await,
        (Step::App2fa(cfg), Action::OfflineChallenge) => ctx.offline_challenge(cfg).await,
        (Step::App2fa(_), Action::OfflineCheck { otp }) => ctx.offline_check(&otp).await,
        (Step::EmailIdentityVerification(cfg), Action::CheckEmailOtp { otp }) => ctx.check_email_otp(cfg, &otp).await,
        (Step::EmailIdentityVerification(cfg), Action::ResendEmailOtp) => ctx.resend_email_otp(cfg).await,
        (Step::SmsIdentityVerification(cfg), Action::CheckSmsOtp { otp }) => ctx.check_sms_otp(cfg, &otp).await,
        (Step::SmsIdentityVerification(cfg), Action::ResendSmsOtp) => ctx.resend_sms_otp(cfg).await,
        (Step::SetPassword(cfg), Action::SetPassword { new_password }) => ctx.set_password(cfg, new_password).await,
        (Step::AcknowledgeMessage(_), Action::Acknowledge) => ctx.advance().await,
        (Step::SecretQuestionsIdentityVerification(cfg), Action::CheckSecretAnswers { answers }) => {
            ctx.check_secret_answers(cfg, &answers).await
        }
        (Step::FlowContinuation(_), Action::CheckContinuationToken { token }) => {
            ctx.check_continuation_token(&token).await
        }
        (Step::UserDataRegistration(cfg), Action::RegisterData { values, captcha }) => {
            ctx.register_data(cfg, values, captcha).await
        }
        (Step::UserDataRegistration(cfg), Action::ValidateRegistration) => ctx.validate_data(cfg).await,
        (Step::UserDataRegistration(cfg), Action::ContinueRegistration) => ctx.continue_data(cfg).await,
        (Step::UserDataRegistration(cfg), Action::NewCaptcha) => ctx.new_captcha(cfg),
        (Step::EmailVerification(cfg), Action::CheckEmailOtp { otp }) => {
            ctx.check_verification(&cfg.into(), &otp).await
        }
        (Step::EmailVerification(cfg), Action::ResendEmailOtp) => ctx.resend_verification(&cfg.into()).await,
        (Step::PhoneNumberVerification(cfg), Action::CheckSmsOtp { otp }) => {
            ctx.check_verification(&cfg.into(), &otp).await
        }
        (Step::PhoneNumberVerification(cfg), Action::ResendSmsOtp) => ctx.resend_verification(&cfg.into()).await,
        (Step::PasswordRegistration(_), Action::RegisterPassword { password }) => ctx.register_password(password).await,
        (Step::App2faActivation(_), Action::PollActivation) => ctx.poll_activation().await,
        _ => Ok(Outcome::Unexpected),
    }
}

impl Ctx<'_> {
    /// The language of messages for `user`: its `language` item if supported, else the configured default.
    fn language_of(&self, user: &User) -> String {
        messages::language_for(user, &self.deps.config.messaging.default_language)
    }

    /// Renders `template` for `user` and queues it to `to` with this call's other effects.
    fn queue_mail(
        &mut self,
        user: &User,
        to: &str,
        template: &str,
        mut vars: BTreeMap<&str, String>,
    ) -> Result<(), EngineError> {
        vars.insert("username", user.username.clone());
        let rendered = self.deps.templates.render_mail(template, &self.language_of(user), &vars)?;
        let message = outbox::seal_email(self.deps.key, self.deps.random, self.now, to, template, rendered);
        self.effects.push(Effect::Enqueue(message));
        Ok(())
    }

    /// Renders SMS `template` for `user` and queues it to `to`.
    fn queue_sms(
        &mut self,
        user: &User,
        to: &str,
        template: &str,
        vars: &BTreeMap<&str, String>,
    ) -> Result<(), EngineError> {
        let text = self.deps.templates.render_text(template, &self.language_of(user), vars)?;
        let message = outbox::seal_sms(self.deps.key, self.deps.random, self.now, to, template, &text);
        self.effects.push(Effect::Enqueue(message));
        Ok(())
    }
}
