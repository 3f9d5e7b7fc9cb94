//! Every change of a login's state, in one place to check against the diagram in [`super`]: an attempt's
//! outcome is settled, a retry scheduled, the key manager judged needed or not, and the login completed or failed.

use std::sync::Arc;
use std::time::Duration;

use crate::config::KeyManagerPolicy;
use crate::endpoint::Purpose;
use crate::error::{AuthError, FailureCause};
use crate::jwt::grants_simplified_key_delivery;
use crate::response::IssuedToken;
use crate::time::UnixTime;
use crate::tokens::{AuthorizationToken, Generation, KeyManagerToken, SessionToken, Tokens};

use super::login::{AgentCheck, Leg, LegStatus};
use super::{ABANDONED_MEMORY, Authenticator, Event, Failure, Held, KeyManagerOutcome, Outcome, RequestId};

impl Authenticator {
    /// Every login transition passes here: an attempt of one leg ended with `outcome`.
    pub(super) fn settle(&mut self, purpose: Purpose, outcome: Outcome, now: UnixTime) {
        let outcome = match outcome {
            Outcome::Retry { cause, retry_after } => match self.schedule_retry(purpose, cause, retry_after, now) {
                Some(exhausted) => Outcome::Fatal(exhausted),
                None => return,
            },
            other => other,
        };
        match (purpose, outcome) {
            (_, Outcome::Retry { .. }) | (Purpose::AgentVersion, _) => {}
            (Purpose::Session, Outcome::Fatal(error)) => self.fail_login(error, now),
            (Purpose::KeyManager, Outcome::Fatal(error)) => {
                let verdict_pending = self
                    .login
                    .as_ref()
                    .is_some_and(|login| login.session_done().is_none() || login.agent_check.is_some());
                if self.config.key_manager == KeyManagerPolicy::Auto && verdict_pending {
                    // Simplified key delivery may yet make the key manager unnecessary: wait for the session (and
                    // the agent's version).
                    if let Some(leg) = self.leg_mut(purpose) {
                        leg.status = LegStatus::Failed(error);
                    }
                } else {
                    self.fail_login(error, now);
                }
            }
            (Purpose::Session, Outcome::Token(token)) if self.config.obo.is_some() && !self.in_obo_user_step() => {
                self.after_app_session(token);
            }
            (Purpose::Session, Outcome::Token(token)) => {
                let skd = grants_simplified_key_delivery(token.token.expose());
                if let Some(leg) = self.leg_mut(purpose) {
                    leg.status = LegStatus::Done(token);
                }
                self.after_session(skd, now);
            }
            (Purpose::KeyManager, Outcome::Token(token)) => {
                if let Some(leg) = self.leg_mut(purpose) {
                    leg.status = LegStatus::Done(token);
                }
                self.finish_if_complete();
            }
        }
    }

    /// Counts a retryable failure: schedules the next attempt, or returns the error when the policy is spent.
    pub(super) fn schedule_retry(
        &mut self,
        purpose: Purpose,
        cause: FailureCause,
        retry_after: Option<Duration>,
        now: UnixTime,
    ) -> Option<AuthError> {
        let max_attempts = self.config.retry.max_attempts();
        let username = self.config.username.to_string();
        let retry = self.config.retry.clone();
        let login = self.login.as_mut()?;
        let leg = match purpose {
            Purpose::Session => &mut login.session,
            Purpose::KeyManager => login.key_manager.as_mut()?,
            Purpose::AgentVersion => return None,
        };
        leg.failures += 1;
        if leg.failures >= max_attempts {
            return Some(AuthError::Unavailable {
                endpoint: leg.endpoint,
                username,
                attempts: leg.failures,
                last: cause,
            });
        }
        let delay = retry.delay(leg.failures, retry_after, &mut self.jitter);
        leg.status = LegStatus::Backoff { since: now, until: now.saturating_add(delay) };
        let event = Event::RetryScheduled { endpoint: leg.endpoint, attempt: leg.failures, max_attempts, delay, cause };
        self.events.push_back(event);
        None
    }

    fn in_obo_user_step(&self) -> bool {
        self.leg(Purpose::Session).is_some_and(|leg| leg.endpoint.is_obo_user())
    }

    /// OBO: the app's session arrived; the user's session is asked with it next, with a retry budget of its own.
    fn after_app_session(&mut self, token: IssuedToken) {
        let Some(user) = &self.config.obo else { return };
        let endpoint = user.endpoint(&self.config.method);
        if let Some(login) = self.login.as_mut() {
            login.app_session = Some(token.token);
            login.session = Leg::new(endpoint, true);
        }
    }

    /// The session token arrived: decide whether the key manager is still needed.
    pub(super) fn after_session(&mut self, skd: bool, now: UnixTime) {
        self.last_skd = Some(skd);
        let dedicated_agent = self.config.endpoints.agent != self.config.endpoints.pod;
        let Some(login) = self.login.as_mut() else { return };
        if skd && self.config.key_manager == KeyManagerPolicy::Auto && login.key_manager.is_some() {
            if dedicated_agent {
                // Only agents from 24.12 on deliver keys without the key manager: ask this one its version.
                login.agent_check = Some(AgentCheck::Due);
            } else {
                // The agent sits with the pod, which granted SKD: trust the claim.
                self.skip_key_manager();
            }
        } else {
            self.key_manager_needed(now);
        }
    }

    /// The agent answered (or failed to answer) its version.
    pub(super) fn after_agent_check(&mut self, supports_skd: bool, now: UnixTime) {
        let Some(login) = self.login.as_mut() else { return };
        login.agent_check = None;
        if supports_skd { self.skip_key_manager() } else { self.key_manager_needed(now) }
    }

    pub(super) fn skip_key_manager(&mut self) {
        let Some(login) = self.login.as_mut() else { return };
        if let Some(id) = login.key_manager.take().and_then(|leg| leg.in_flight()) {
            self.remember_abandoned(id);
        }
        self.finish_if_complete();
    }

    pub(super) fn key_manager_needed(&mut self, now: UnixTime) {
        let Some(login) = self.login.as_mut() else { return };
        if let Some(leg) = login.key_manager.as_mut() {
            match std::mem::replace(&mut leg.status, LegStatus::Idle) {
                LegStatus::Idle => leg.status = LegStatus::Due,
                LegStatus::Failed(error) => return self.fail_login(error, now),
                other => leg.status = other,
            }
        }
        self.finish_if_complete();
    }

    /// A login with nothing left to send, await or wait for: the session token is in hand (a failed session ends
    /// the login at once), so the key manager's leg decides it: needed and idle, it becomes due; failed, the login
    /// fails; done or skipped, the login completes. Afterwards the login has ended or has a request due.
    pub(super) fn conclude(&mut self, now: UnixTime) {
        let Some(login) = &self.login else { return };
        if login.session_done().is_some() && login.agent_check.is_none() {
            self.key_manager_needed(now);
        }
        if let Some(login) = self.login.as_mut()
            && !login.legs().any(Leg::is_due)
            && login.agent_check.is_none()
        {
            // Not reachable through the transitions above; sending the session login again keeps the driver busy
            // with real work rather than stuck.
            login.session.status = LegStatus::Due;
        }
    }

    pub(super) fn finish_if_complete(&mut self) {
        let Some(login) = &self.login else { return };
        let Some(session) = login.session_done() else { return };
        if login.agent_check.is_some() {
            return;
        }
        let key_manager = match &login.key_manager {
            None => None,
            Some(Leg { status: LegStatus::Done(token), .. }) => Some(token.token.clone()),
            Some(_) => return,
        };
        let skd = grants_simplified_key_delivery(session.token.expose());
        let key_manager_outcome = match (&key_manager, self.config.key_manager) {
            (Some(_), _) => KeyManagerOutcome::Obtained,
            (None, KeyManagerPolicy::Never) => KeyManagerOutcome::Disabled,
            (None, _) => KeyManagerOutcome::SkippedBySimplifiedKeyDelivery,
        };
        let session_token = SessionToken(session.token.clone());
        let authorization = session.authorization.clone().map(AuthorizationToken);
        self.end_login();
        self.latest = Generation(self.latest.0 + 1);
        let tokens = Tokens {
            generation: self.latest,
            session: session_token,
            key_manager: key_manager.map(KeyManagerToken),
            authorization,
            simplified_key_delivery: skd,
        };
        self.held = Held::Tokens(Arc::new(tokens));
        self.failure = None;
        self.events.push_back(Event::Authenticated { generation: self.latest, key_manager: key_manager_outcome });
    }

    pub(super) fn fail_login(&mut self, error: AuthError, now: UnixTime) {
        self.end_login();
        let consecutive = self.failure.as_ref().map_or(0, |f| f.consecutive).saturating_add(1);
        let cool_down = self.config.cool_down.after(consecutive);
        self.failure =
            Some(Failure { error: error.clone(), until: now.saturating_add(cool_down), consecutive, delivered: false });
        self.events.push_back(Event::LoginFailed { error, cool_down });
    }

    /// Drops the login, remembering its requests still out so that their answers are ignored.
    pub(super) fn end_login(&mut self) {
        self.jwt = None;
        if let Some(login) = self.login.take() {
            for id in login.in_flight() {
                self.remember_abandoned(id);
            }
        }
    }

    pub(super) fn remember_abandoned(&mut self, id: RequestId) {
        // Abandoning a request can end the login, which abandons what is still out: remember each id once, so that
        // a second answer to it is refused.
        if self.abandoned.contains(&id) {
            return;
        }
        if self.abandoned.len() == ABANDONED_MEMORY {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(id);
    }
}
