//! A minimal datafeed v5 on the fake agent: `POST /agent/v5/datafeeds` creates a feed for the bot whose session
//! calls it, and `POST /agent/v5/datafeeds/{id}/read` with `{"ackId": ...}` answers `{"events": [...], "ackId":
//! ...}`. A feed belongs to its user, not to the session that created it, so it survives a re-login, as
//! Symphony's does. Events are acknowledged by the next read carrying the `ackId` they came with; a read with
//! any other `ackId` gets them again (at-least-once). A read with nothing to deliver answers at once with no
//! events (the real agent holds it up to 30 s). An unknown feed, or another user's, is 400, which tells a client
//! to create a new one.

use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{FakePod, error, json as reply, unauthorized};

/// Events handed out by one read, at most.
const MAX_EVENTS_PER_READ: usize = 100;

/// The feeds of every bot.
#[derive(Debug, Default)]
pub(super) struct Datafeeds {
    feeds: BTreeMap<String, Feed>,
    seq: u64,
}

#[derive(Debug)]
struct Feed {
    owner: String,
    pending: VecDeque<Value>,
    /// The `ackId` of the last read and how many of the pending events it handed out.
    delivered: Option<(String, usize)>,
}

impl Datafeeds {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{:08}", self.seq)
    }
}

impl FakePod {
    /// Posts a message event (`MESSAGESENT`, text `text`) to every datafeed; returns how many feeds got it.
    pub fn publish_message(&mut self, text: &str) -> usize {
        let feeds = &mut self.datafeeds;
        feeds.seq += 1;
        let seq = feeds.seq;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let event = json!({
            "id": format!("event-{seq}"),
            "messageId": format!("message-{seq}"),
            "timestamp": timestamp,
            "type": "MESSAGESENT",
            "initiator": {"user": {"userId": 1, "username": "fake.user"}},
            "payload": {"messageSent": {"message": {
                "messageId": format!("message-{seq}"),
                "timestamp": timestamp,
                "message": format!("<div data-format=\"PresentationML\" data-version=\"2.0\">{}</div>", escape(text)),
                "stream": {"streamId": "fake-stream", "streamType": "IM"},
            }}},
        });
        for feed in feeds.feeds.values_mut() {
            feed.pending.push_back(event.clone());
        }
        feeds.feeds.len()
    }

    /// How many datafeeds exist.
    #[must_use]
    pub fn datafeed_count(&self) -> usize {
        self.datafeeds.feeds.len()
    }

    /// `POST /agent/v5/datafeeds`.
    pub(super) fn datafeed_create(&mut self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let owner = match self.agent_user(now, request) {
            Ok(owner) => owner,
            Err(refused) => return unauthorized(refused),
        };
        let id = self.datafeeds.next_id("datafeed");
        let feed = Feed { owner, pending: VecDeque::new(), delivered: None };
        self.datafeeds.feeds.insert(id.clone(), feed);
        let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        reply(StatusCode::CREATED, &json!({"id": id, "createdAt": created}))
    }

    /// `POST /agent/v5/datafeeds/{id}/read`.
    pub(super) fn datafeed_read(&mut self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let owner = match self.agent_user(now, request) {
            Ok(owner) => owner,
            Err(refused) => return unauthorized(refused),
        };
        let Ok(body) = serde_json::from_slice::<Value>(request.body()) else {
            return error(StatusCode::BAD_REQUEST, "Invalid request body: expected JSON");
        };
        let ack = body.get("ackId").and_then(Value::as_str).unwrap_or("").to_owned();
        // The path is `/agent/v5/datafeeds/{id}/read`: the id is the fourth segment.
        let id = request.uri().path().split('/').nth(4).unwrap_or("").to_owned();
        let new_ack = self.datafeeds.next_id("ack");
        let Some(feed) = self.datafeeds.feeds.get_mut(&id).filter(|feed| feed.owner == owner) else {
            return error(StatusCode::BAD_REQUEST, "Datafeed not found: create a new one");
        };
        if let Some((delivered_ack, count)) = feed.delivered.take()
            && delivered_ack == ack
        {
            feed.pending.drain(..count.min(feed.pending.len()));
        }
        let events: Vec<Value> = feed.pending.iter().take(MAX_EVENTS_PER_READ).cloned().collect();
        feed.delivered = Some((new_ack.clone(), events.len()));
        reply(StatusCode::OK, &json!({"events": events, "ackId": new_ack}))
    }

    /// The user of an agent call: a live session, and its key-manager token unless SKD spares it (as the echo).
    /// The refusal is the 401's message.
    fn agent_user(&self, now: SystemTime, request: &Request<Vec<u8>>) -> Result<String, &'static str> {
        let Some(session) = self.live_grant(&self.sessions, request, "sessionToken", now) else {
            return Err("Invalid session");
        };
        if !(session.skd && self.agent_supports_skd()) {
            let km = self.live_grant(&self.key_manager_tokens, request, "keyManagerToken", now);
            if km.is_none_or(|km| km.username != session.username) {
                return Err("Invalid key manager token");
            }
        }
        Ok(session.username.clone())
    }
}

/// `text` with the characters that are markup in PresentationML escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Peer;
    use crate::pod::TokenKind;

    /// A token of `kind` for bot `name`, as a login would issue it.
    fn grant(pod: &mut FakePod, name: &str, kind: TokenKind) -> String {
        let issued = pod.issue(SystemTime::now(), name, kind);
        body(&issued)["token"].as_str().unwrap().to_owned()
    }

    const PUBLIC_KEY: &str = include_str!("../../../fixtures/keys/bot-2048.pub.pem");

    /// A pod with bots `a` and `b`, each holding a live session and key-manager token, as headers.
    fn pod_with_sessions() -> (FakePod, Vec<(String, String)>) {
        let mut pod = FakePod::new();
        let mut headers = Vec::new();
        for name in ["a", "b"] {
            pod.add_rsa_bot(name, PUBLIC_KEY).unwrap();
            let session = grant(&mut pod, name, TokenKind::Session);
            let km = grant(&mut pod, name, TokenKind::KeyManager);
            headers.push((session, km));
        }
        (pod, headers)
    }

    fn post(path: &str, (session, km): &(String, String), body: &str) -> Request<Vec<u8>> {
        Request::post(path)
            .header("sessionToken", session)
            .header("keyManagerToken", km)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn body(response: &Response<Vec<u8>>) -> Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn events_are_delivered_until_acknowledged_and_a_feed_is_its_owners_only() {
        let (mut pod, users) = pod_with_sessions();
        let now = SystemTime::now();
        let peer = Peer::in_process();
        let created = pod.handle(now, post("/agent/v5/datafeeds", &users[0], ""), &peer).into_response().unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = body(&created)["id"].as_str().unwrap().to_owned();
        let read = format!("/agent/v5/datafeeds/{id}/read");
        assert_eq!(pod.publish_message("one <b>"), 1);
        pod.publish_message("two");

        let first = body(&pod.handle(now, post(&read, &users[0], "{}"), &peer).into_response().unwrap());
        assert_eq!(first["events"].as_array().unwrap().len(), 2);
        assert!(
            first["events"][0]["payload"]["messageSent"]["message"]["message"]
                .as_str()
                .unwrap()
                .contains("one &lt;b&gt;")
        );
        // Not acknowledged: delivered again.
        let again = body(&pod.handle(now, post(&read, &users[0], "{}"), &peer).into_response().unwrap());
        assert_eq!(again["events"].as_array().unwrap().len(), 2);
        let ack = json!({"ackId": again["ackId"]}).to_string();
        let after_ack = body(&pod.handle(now, post(&read, &users[0], &ack), &peer).into_response().unwrap());
        assert_eq!(after_ack["events"].as_array().unwrap().len(), 0);

        let other = pod.handle(now, post(&read, &users[1], "{}"), &peer).into_response().unwrap();
        assert_eq!(other.status(), StatusCode::BAD_REQUEST, "another user's feed is not found");
        let unknown = pod.handle(now, post("/agent/v5/datafeeds/nope/read", &users[0], "{}"), &peer);
        assert_eq!(unknown.status(), Some(400));
        let no_token = Request::post(read.as_str()).body(b"{}".to_vec()).unwrap();
        assert_eq!(pod.handle(now, no_token, &peer).status(), Some(401));
    }

    #[test]
    fn a_feed_survives_its_owners_relogin() {
        let (mut pod, users) = pod_with_sessions();
        let now = SystemTime::now();
        let peer = Peer::in_process();
        let created = pod.handle(now, post("/agent/v5/datafeeds", &users[0], ""), &peer).into_response().unwrap();
        let id = body(&created)["id"].as_str().unwrap().to_owned();
        pod.expire_all();
        let read = format!("/agent/v5/datafeeds/{id}/read");
        assert_eq!(pod.handle(now, post(&read, &users[0], "{}"), &peer).status(), Some(401));
        let session = grant(&mut pod, "a", TokenKind::Session);
        let km = grant(&mut pod, "a", TokenKind::KeyManager);
        pod.publish_message("after");
        let events = body(&pod.handle(now, post(&read, &(session, km), "{}"), &peer).into_response().unwrap());
        assert_eq!(events["events"].as_array().unwrap().len(), 1);
    }
}
