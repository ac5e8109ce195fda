//! GSMA MaaP chatbot JSON (RCC.07 §3.6.10, schema in RCC.07 Annex): the
//! content types carriers' chatbot platforms put inside CPIM messages.
//!
//! * `application/vnd.gsma.botmessage.v1.0+json`: a rich card
//!   (`generalPurposeCard`) or carousel (`generalPurposeCardCarousel`);
//! * `application/vnd.gsma.botsuggestion.v1.0+json`: suggested replies and
//!   actions (`{"suggestions": [...]}`) sent beside a message;
//! * `application/vnd.gsma.botsuggestion.response.v1.0+json`: what the
//!   client sends back when the user taps one (`{"response": {"reply": ...}}`);
//! * `application/vnd.gsma.botsharedclientdata.v1.0+json`: device data (not
//!   modelled; recognised by its type only).
//!
//! Converts to and from the model in [`super::content`]; parsing checks the
//! same limits the model does (it ends in [`RcsMessage::from_wire`]).

use serde_json::{Value, json};

use super::content::{
    Action, Alignment, Card, CardWidth, Carousel, Media, MediaHeight, Orientation, RcsMessage,
    RichCard, Standalone, Suggestion, Thumbnail, UserMessage, Wire, describe_json_error,
};
use crate::Error;

/// A rich card or carousel.
pub const BOT_MESSAGE: &str = "application/vnd.gsma.botmessage.v1.0+json";
/// Suggested replies and actions.
pub const BOT_SUGGESTION: &str = "application/vnd.gsma.botsuggestion.v1.0+json";
/// A tapped suggestion.
pub const BOT_SUGGESTION_RESPONSE: &str = "application/vnd.gsma.botsuggestion.response.v1.0+json";
/// Device data a client shares with a chatbot.
pub const BOT_SHARED_CLIENT_DATA: &str = "application/vnd.gsma.botsharedclientdata.v1.0+json";

fn suggestion(s: &Suggestion) -> Value {
    match s {
        Suggestion::Reply { text, postback } => {
            json!({"reply": {"displayText": text, "postback": {"data": postback}}})
        }
        Suggestion::Action {
            text,
            postback,
            action,
        } => {
            let mut a = json!({"displayText": text, "postback": {"data": postback}});
            match action {
                Action::OpenUrl { url } => a["urlAction"] = json!({"openUrl": {"url": url}}),
                Action::Dial { phone_number } => {
                    a["dialerAction"] = json!({"dialPhoneNumber": {"phoneNumber": phone_number}})
                }
                Action::ViewLocation {
                    latitude,
                    longitude,
                    label,
                } => {
                    let mut loc = json!({"latitude": latitude, "longitude": longitude});
                    if let Some(l) = label {
                        loc["label"] = json!(l);
                    }
                    a["mapAction"] = json!({"showLocation": {"location": loc}});
                }
                Action::ShareLocation {} => a["mapAction"] = json!({"requestLocationPush": {}}),
                Action::CalendarEvent {
                    start,
                    end,
                    title,
                    description,
                } => {
                    let mut ev = json!({"startTime": start, "endTime": end, "title": title});
                    if let Some(d) = description {
                        ev["description"] = json!(d);
                    }
                    a["calendarAction"] = json!({ "createCalendarEvent": ev });
                }
            }
            json!({ "action": a })
        }
    }
}

fn height(h: MediaHeight) -> &'static str {
    match h {
        MediaHeight::Short => "SHORT_HEIGHT",
        MediaHeight::Medium => "MEDIUM_HEIGHT",
        MediaHeight::Tall => "TALL_HEIGHT",
    }
}

fn card(c: &Card) -> Value {
    let mut v = json!({});
    if let Some(m) = &c.media {
        let mut media = json!({"mediaUrl": m.url, "mediaContentType": m.content_type, "height": height(m.height)});
        // The schema requires mediaFileSize; the model may not know it, and
        // a made-up size would mislead the client, so it is left out then.
        if let Some(s) = m.size {
            media["mediaFileSize"] = json!(s);
        }
        if let Some(t) = &m.thumbnail {
            media["thumbnailUrl"] = json!(t.url);
            if let Some(ct) = &t.content_type {
                media["thumbnailContentType"] = json!(ct);
            }
            if let Some(s) = t.size {
                media["thumbnailFileSize"] = json!(s);
            }
        }
        v["media"] = media;
    }
    if let Some(t) = &c.title {
        v["title"] = json!(t);
    }
    if let Some(d) = &c.description {
        v["description"] = json!(d);
    }
    if !c.suggestions.is_empty() {
        v["suggestions"] = Value::Array(c.suggestions.iter().map(suggestion).collect());
    }
    v
}

/// The `botmessage` body of a rich card or carousel.
pub fn bot_message(rich: &RichCard) -> Value {
    match rich {
        RichCard::Standalone(s) => {
            let mut layout = json!({"cardOrientation": match s.orientation {
                Orientation::Vertical => "VERTICAL",
                Orientation::Horizontal => "HORIZONTAL",
            }});
            if let Some(a) = s.thumbnail_alignment {
                layout["imageAlignment"] = json!(match a {
                    Alignment::Left => "LEFT",
                    Alignment::Right => "RIGHT",
                });
            }
            json!({"message": {"generalPurposeCard": {"layout": layout, "content": card(&s.card)}}})
        }
        RichCard::Carousel(k) => json!({"message": {"generalPurposeCardCarousel": {
            "layout": {"cardWidth": match k.card_width {
                CardWidth::Small => "SMALL_WIDTH",
                CardWidth::Medium => "MEDIUM_WIDTH",
            }},
            "content": k.cards.iter().map(card).collect::<Vec<_>>(),
        }}}),
    }
}

/// The `botsuggestion` body of a suggestion list.
pub fn bot_suggestions(list: &[Suggestion]) -> Value {
    json!({"suggestions": list.iter().map(suggestion).collect::<Vec<_>>()})
}

/// The `botsuggestion.response` body a client sends when a reply is tapped.
pub fn suggestion_response(text: &str, postback: &str) -> Value {
    json!({"response": {"reply": {"displayText": text, "postback": {"data": postback}}}})
}

fn get<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a Value, Error> {
    v.get(key)
        .ok_or_else(|| Error::rcs(format!("{path}.{key}"), "is missing"))
}

fn get_str(v: &Value, path: &str, key: &str) -> Result<String, Error> {
    get(v, path, key)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::rcs(format!("{path}.{key}"), "must be a string"))
}

fn opt_str(v: &Value, path: &str, key: &str) -> Result<Option<String>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => get_str(v, path, key).map(Some),
    }
}

fn opt_u64(v: &Value, path: &str, key: &str) -> Result<Option<u64>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::rcs(format!("{path}.{key}"), "must be a whole number")),
    }
}

fn get_f64(v: &Value, path: &str, key: &str) -> Result<f64, Error> {
    get(v, path, key)?
        .as_f64()
        .ok_or_else(|| Error::rcs(format!("{path}.{key}"), "must be a number"))
}

fn parse_suggestion(v: &Value, path: &str) -> Result<Suggestion, Error> {
    let (kind, body) = match (v.get("reply"), v.get("action")) {
        (Some(r), None) => ("reply", r),
        (None, Some(a)) => ("action", a),
        _ => return Err(Error::rcs(path, "must be a reply or an action")),
    };
    let at = format!("{path}.{kind}");
    let text = get_str(body, &at, "displayText")?;
    let postback = get_str(
        get(body, &at, "postback")?,
        &format!("{at}.postback"),
        "data",
    )?;
    if kind == "reply" {
        return Ok(Suggestion::Reply { text, postback });
    }
    let action = if let Some(u) = body.get("urlAction") {
        Action::OpenUrl {
            url: get_str(
                get(u, &at, "openUrl")?,
                &format!("{at}.urlAction.openUrl"),
                "url",
            )?,
        }
    } else if let Some(d) = body.get("dialerAction") {
        Action::Dial {
            phone_number: get_str(
                get(d, &at, "dialPhoneNumber")?,
                &format!("{at}.dialerAction.dialPhoneNumber"),
                "phoneNumber",
            )?,
        }
    } else if let Some(m) = body.get("mapAction") {
        if m.get("requestLocationPush").is_some() {
            Action::ShareLocation {}
        } else {
            let p = format!("{at}.mapAction.showLocation.location");
            let loc = get(get(m, &at, "showLocation")?, &p, "location")?;
            Action::ViewLocation {
                latitude: get_f64(loc, &p, "latitude")?,
                longitude: get_f64(loc, &p, "longitude")?,
                label: opt_str(loc, &p, "label")?,
            }
        }
    } else if let Some(c) = body.get("calendarAction") {
        let p = format!("{at}.calendarAction.createCalendarEvent");
        let ev = get(c, &at, "createCalendarEvent")?;
        Action::CalendarEvent {
            start: get_str(ev, &p, "startTime")?,
            end: get_str(ev, &p, "endTime")?,
            title: get_str(ev, &p, "title")?,
            description: opt_str(ev, &p, "description")?,
        }
    } else {
        return Err(Error::rcs(at, "names no action this gateway supports"));
    };
    Ok(Suggestion::Action {
        text,
        postback,
        action,
    })
}

fn parse_suggestion_list(v: &Value, path: &str) -> Result<Vec<Suggestion>, Error> {
    let arr = v
        .as_array()
        .ok_or_else(|| Error::rcs(path, "must be a list"))?;
    if arr.len() > super::content::MAX_SUGGESTIONS {
        return Err(Error::rcs(path, "holds more than 11 suggestions"));
    }
    arr.iter()
        .enumerate()
        .map(|(i, s)| parse_suggestion(s, &format!("{path}[{i}]")))
        .collect()
}

fn parse_card(v: &Value, path: &str) -> Result<Card, Error> {
    let media = match v.get("media") {
        None => None,
        Some(m) => {
            let p = format!("{path}.media");
            let height = match get_str(m, &p, "height")?.as_str() {
                "SHORT_HEIGHT" => MediaHeight::Short,
                "MEDIUM_HEIGHT" => MediaHeight::Medium,
                "TALL_HEIGHT" => MediaHeight::Tall,
                _ => {
                    return Err(Error::rcs(
                        format!("{p}.height"),
                        "must be SHORT_HEIGHT, MEDIUM_HEIGHT or TALL_HEIGHT",
                    ));
                }
            };
            Some(Media {
                url: get_str(m, &p, "mediaUrl")?,
                content_type: get_str(m, &p, "mediaContentType")?,
                size: opt_u64(m, &p, "mediaFileSize")?,
                thumbnail: match opt_str(m, &p, "thumbnailUrl")? {
                    None => None,
                    Some(url) => Some(Thumbnail {
                        url,
                        content_type: opt_str(m, &p, "thumbnailContentType")?,
                        size: opt_u64(m, &p, "thumbnailFileSize")?,
                    }),
                },
                height,
            })
        }
    };
    Ok(Card {
        title: opt_str(v, path, "title")?,
        description: opt_str(v, path, "description")?,
        media,
        suggestions: match v.get("suggestions") {
            None => Vec::new(),
            Some(s) => parse_suggestion_list(s, &format!("{path}.suggestions"))?,
        },
    })
}

/// Parses a `botmessage` body into a checked message (rich card body, no
/// message-level suggestions: those travel as a separate `botsuggestion`).
pub fn parse_bot_message(bytes: &[u8]) -> Result<RcsMessage, Error> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::rcs("botmessage", describe_json_error(&e)))?;
    let m = get(&v, "botmessage", "message")?;
    let rich = if let Some(g) = m.get("generalPurposeCard") {
        let p = "message.generalPurposeCard";
        let layout = g.get("layout").cloned().unwrap_or(json!({}));
        let orientation = match layout.get("cardOrientation").and_then(Value::as_str) {
            None | Some("VERTICAL") => Orientation::Vertical,
            Some("HORIZONTAL") => Orientation::Horizontal,
            Some(_) => {
                return Err(Error::rcs(
                    format!("{p}.layout.cardOrientation"),
                    "must be VERTICAL or HORIZONTAL",
                ));
            }
        };
        let thumbnail_alignment = match layout.get("imageAlignment").and_then(Value::as_str) {
            None => None,
            Some("LEFT") => Some(Alignment::Left),
            Some("RIGHT") => Some(Alignment::Right),
            Some(_) => {
                return Err(Error::rcs(
                    format!("{p}.layout.imageAlignment"),
                    "must be LEFT or RIGHT",
                ));
            }
        };
        RichCard::Standalone(Standalone {
            orientation,
            thumbnail_alignment,
            card: parse_card(get(g, p, "content")?, &format!("{p}.content"))?,
        })
    } else if let Some(g) = m.get("generalPurposeCardCarousel") {
        let p = "message.generalPurposeCardCarousel";
        let card_width = match g
            .get("layout")
            .and_then(|l| l.get("cardWidth"))
            .and_then(Value::as_str)
        {
            None | Some("MEDIUM_WIDTH") => CardWidth::Medium,
            Some("SMALL_WIDTH") => CardWidth::Small,
            Some(_) => {
                return Err(Error::rcs(
                    format!("{p}.layout.cardWidth"),
                    "must be SMALL_WIDTH or MEDIUM_WIDTH",
                ));
            }
        };
        let content = get(g, p, "content")?
            .as_array()
            .ok_or_else(|| Error::rcs(format!("{p}.content"), "must be a list"))?;
        if content.len() > *super::content::CAROUSEL_CARDS.end() {
            return Err(Error::rcs(format!("{p}.content"), "holds too many cards"));
        }
        RichCard::Carousel(Carousel {
            card_width,
            cards: content
                .iter()
                .enumerate()
                .map(|(i, c)| parse_card(c, &format!("{p}.content[{i}]")))
                .collect::<Result<_, _>>()?,
        })
    } else {
        return Err(Error::rcs(
            "message",
            "needs generalPurposeCard or generalPurposeCardCarousel",
        ));
    };
    RcsMessage::from_wire(Wire {
        rich_card: Some(rich),
        ..Wire::default()
    })
}

/// Parses a `botsuggestion` body.
pub fn parse_bot_suggestions(bytes: &[u8]) -> Result<Vec<Suggestion>, Error> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::rcs("botsuggestion", describe_json_error(&e)))?;
    let list = parse_suggestion_list(get(&v, "botsuggestion", "suggestions")?, "suggestions")?;
    // The model's checks (lengths, numbers, URLs) apply to what arrives too.
    RcsMessage::from_wire(Wire {
        text: Some("-".into()),
        suggestions: Some(list.clone()),
        ..Wire::default()
    })?;
    Ok(list)
}

/// Parses a `botsuggestion.response` body into the user's answer.
pub fn parse_suggestion_response(bytes: &[u8]) -> Result<UserMessage, Error> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::rcs("botsuggestion.response", describe_json_error(&e)))?;
    let r = get(&v, "botsuggestion.response", "response")?;
    let s = parse_suggestion(r, "response")?;
    if s.postback().chars().count() > super::content::MAX_POSTBACK_CHARS
        || s.text().chars().count() > super::rbm::MAX_USER_TEXT_CHARS
    {
        return Err(Error::rcs("response", "text or postback is too long"));
    }
    Ok(UserMessage::SuggestionResponse {
        text: s.text().to_string(),
        postback: s.postback().to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn api(name: &str) -> RcsMessage {
        serde_json::from_slice(&crate::rcs::fixture(&format!("api/{name}"))).unwrap()
    }

    fn pretty(v: &Value) -> Vec<u8> {
        let mut s = serde_json::to_vec_pretty(v).unwrap();
        s.push(b'\n');
        s
    }

    #[test]
    fn cards_and_carousels_round_trip_through_botmessage() {
        for (name, golden) in [
            ("standalone_card.json", "chatbot/botmessage_standalone.json"),
            ("carousel.json", "chatbot/botmessage_carousel.json"),
        ] {
            let m = api(name);
            let crate::rcs::Body::RichCard(rich) = &m.body else {
                panic!("rich card expected")
            };
            let body = bot_message(rich);
            crate::rcs::golden(golden, &pretty(&body));
            let back = parse_bot_message(&serde_json::to_vec(&body).unwrap()).unwrap();
            assert_eq!(back.body, m.body, "{name}");
        }
    }

    #[test]
    fn suggestions_and_responses() {
        let m = api("text_with_suggestions.json");
        let body = bot_suggestions(&m.suggestions);
        crate::rcs::golden("chatbot/botsuggestion.json", &pretty(&body));
        let back = parse_bot_suggestions(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(back, m.suggestions);
        let r = suggestion_response("On my way", "coming");
        let got = parse_suggestion_response(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(
            got,
            UserMessage::SuggestionResponse {
                text: "On my way".into(),
                postback: "coming".into()
            }
        );
        assert!(parse_suggestion_response(br#"{"response": {}}"#).is_err());
        assert!(
            parse_bot_message(br#"{"message": {"generalPurposeCard": {"content": {}}}}"#).is_err()
        );
        let bad = br#"{"suggestions": [{"action": {"displayText": "x", "postback": {"data": "p"}, "dialerAction": {"dialPhoneNumber": {"phoneNumber": "12"}}}}]}"#;
        assert!(parse_bot_suggestions(bad).is_err());
    }
}
