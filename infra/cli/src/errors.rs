//! Errors as people read them: one line on stderr saying what failed and what to do, never a
//! Rust Debug dump.

use std::error::Error as StdError;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::stack::Stack;

/// An AWS call failed; the message is [`sdk_error_text`]'s.
#[derive(Debug, thiserror::Error)]
#[error("{action} failed: {message}")]
pub struct AwsError {
    /// The service and operation, e.g. "SQS ReceiveMessage".
    pub action: &'static str,
    pub message: String,
}

/// Maps an SDK error of `action` to an [`AwsError`].
pub fn aws_error<E, R>(action: &'static str) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| AwsError {
        action,
        message: sdk_error_text(&e),
    }
}

/// An SDK error in one line: the service's error code and message, or else the causes of the
/// failure (no connection, no credentials, a timeout), without the SDK's Debug rendering.
pub fn sdk_error_text<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(service) = e.as_service_error() {
        let code = service.code().unwrap_or("unknown error");
        return match service.message() {
            Some(message) if !message.trim().is_empty() => one_line(&format!("{code}: {message}")),
            _ => code.to_owned(),
        };
    }
    chain_text(e)
}

/// `e` and its sources joined by ": ", a cause that its parent already says left out.
pub fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = one_line(&err.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// `text` on one line, runs of whitespace as one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The line `stockguard` prints for a failed command: `error: ` and the causes, then the stack it
/// ran against when AWS was called, and what to do when that can be told. `profile` is
/// `--profile`, for an error before the stack was found.
pub fn error_line(e: &anyhow::Error, stack: Option<&Stack>, profile: Option<&str>) -> String {
    let text = one_line(&strip_debug_dumps(&format!("{e:#}")));
    let called_aws = e
        .chain()
        .any(|c| c.is::<AwsError>() || c.is::<stockguard_adapters::AdapterError>());
    let mut line = format!("error: {text}");
    let profile = stack.and_then(|s| s.profile.as_deref()).or(profile);
    let hint = hint(&text, stack, profile);
    match (stack.filter(|_| called_aws), hint) {
        (Some(stack), Some(hint)) => line.push_str(&format!(" (stack: {stack}; {hint})")),
        (Some(stack), None) => line.push_str(&format!(" (stack: {stack})")),
        (None, Some(hint)) => line.push_str(&format!(" ({hint})")),
        (None, None) => {}
    }
    line
}

/// What to do about an error whose text is `text`, when it says something that can be acted on.
/// `stack`: where the command ran (`None` before it was found); `profile`: the one in use.
pub fn hint(text: &str, stack: Option<&Stack>, profile: Option<&str>) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let local = stack.is_some_and(|s| !s.is_aws());
    let name = profile.unwrap_or("NAME");
    let credentials = has(&[
        "no credentials",
        "credentials provider",
        "credential provider",
        "loading credentials",
        "retrieving credentials",
        "credentialsnotloaded",
    ]);
    if credentials && has(&["external process", "credential_process"]) {
        return Some(format!(
            "the credential_process of profile {name} gave no credentials: run it by hand to \
             see why"
        ));
    }
    if has(&["sso"]) && has(&["token", "expired", "refresh", "session", "cache"])
        || has(&[
            "token has expired",
            "expiredtoken",
            "security token included in the request is expired",
        ])
    {
        return Some(format!("sign in again: `aws sso login --profile {name}`"));
    }
    if credentials {
        return Some(match profile {
            Some(p) => format!(
                "profile {p} gave no usable AWS credentials: `aws sso login --profile {p}` for \
                 an SSO profile, or check it in ~/.aws/config"
            ),
            None => "no usable AWS credentials: pass --profile NAME (after `aws sso login \
                     --profile NAME` for SSO), or set AWS_PROFILE or AWS_ACCESS_KEY_ID"
                .to_owned(),
        });
    }
    if has(&[
        "unrecognizedclientexception",
        "invalidclienttokenid",
        "security token included in the request is invalid",
        "signaturedoesnotmatch",
    ]) {
        return Some(format!(
            "the credentials are not valid here: sign in again (`aws sso login --profile \
             {name}`) or check --profile"
        ));
    }
    if has(&["accessdenied", "not authorized to perform"]) {
        let whose = profile.map_or_else(String::new, |p| format!(" of profile {p}"));
        return Some(format!(
            "the credentials{whose} may not do this; use a profile whose role may, or ask for the \
             permission the message names"
        ));
    }
    if has(&[
        "connection refused",
        "tcp connect error",
        "error trying to connect",
        "dns error",
        "failed to lookup address",
        "dispatch failure",
        "io error",
        "timed out",
        "timeout",
    ]) {
        return Some(if local {
            "is it up? `make local-up` starts the local stack".to_owned()
        } else {
            "AWS could not be reached: check the network, --region and AWS_ENDPOINT_URL".to_owned()
        });
    }
    if has(&[
        "resourcenotfoundexception",
        "non-existent table",
        "requested resource not found",
    ]) {
        return Some(if local {
            "the local stack is gone or was restarted: `make local-up` starts it again".to_owned()
        } else {
            "it does not exist there: check --stack-name, --region, --profile and \
             STOCKGUARD_TABLE"
                .to_owned()
        });
    }
    None
}

/// Removes the Debug renderings the SDK appends to its errors' text (`... (DispatchFailure(...))`)
/// from `text`, keeping what precedes them.
pub fn strip_debug_dumps(text: &str) -> String {
    const MARKERS: [&str; 5] = [
        " (DispatchFailure(",
        " (ServiceError(",
        " (ConstructionFailure(",
        " (TimeoutError(",
        " (ResponseError(",
    ];
    let mut rest = text.to_owned();
    loop {
        let Some(start) = MARKERS.iter().filter_map(|m| rest.find(m)).min() else {
            return rest;
        };
        let open = start + 1;
        let Some(end) = closing_paren(&rest, open) else {
            rest.truncate(start);
            return rest;
        };
        rest.replace_range(start..=end, "");
    }
}

/// The index of the parenthesis that closes the one at `open`, skipping quoted strings.
fn closing_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[open..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_debug_rendering_is_removed() {
        let text = "reading channels: Scan: dispatch failure: io error: error trying to connect: \
                    tcp connect error: Connection refused (os error 111) (DispatchFailure(\
                    DispatchFailure { source: ConnectorError { kind: Io, source: hyper_util::\
                    client::legacy::Error(Connect, ConnectError(\"tcp connect error\", \
                    Os { code: 111, kind: ConnectionRefused, message: \"Connection (refused)\" \
                    })), connection: Unknown } }))";
        assert_eq!(
            strip_debug_dumps(text),
            "reading channels: Scan: dispatch failure: io error: error trying to connect: tcp \
             connect error: Connection refused (os error 111)"
        );
        assert_eq!(strip_debug_dumps("plain (and fine)"), "plain (and fine)");
        assert_eq!(strip_debug_dumps("cut (ServiceError(ServiceError {"), "cut");
    }

    fn stack(endpoint: Option<&str>) -> Stack {
        Stack::explicit("sg-StateTable", endpoint.map(str::to_owned), None)
    }

    #[test]
    fn make_local_up_is_suggested_for_local_stacks_only() {
        let refused = "reading channels: Scan: dispatch failure: io error: Connection refused";
        let local = stack(Some("http://127.0.0.1:4566"));
        assert!(
            hint(refused, Some(&local), None)
                .unwrap()
                .contains("make local-up")
        );

        let mut with_profile = local.clone();
        with_profile.profile = Some("prod".into());
        let mut named = local.clone();
        named.origin = crate::stack::Origin::CloudFormation("sg".into());
        named.endpoint_url = None;
        for aws in [stack(None), with_profile, named] {
            let hint = hint(refused, Some(&aws), None).unwrap();
            assert!(!hint.contains("make local-up"), "{aws}: {hint}");
            assert!(hint.contains("--region"), "{hint}");
        }
        let gone =
            "reading channels: Scan: ResourceNotFoundException: Requested resource not found";
        assert!(
            hint(gone, Some(&stack(None)), None)
                .unwrap()
                .contains("--stack-name")
        );
        assert!(
            hint(gone, Some(&local), None)
                .unwrap()
                .contains("make local-up")
        );
    }

    #[test]
    fn credential_problems_say_how_to_sign_in() {
        let mut s = stack(None);
        s.profile = Some("ops".into());
        let expired = "dispatch failure: other: the SSO token has expired";
        assert_eq!(
            hint(expired, Some(&s), Some("ops")).unwrap(),
            "sign in again: `aws sso login --profile ops`"
        );
        let none = "dispatch failure: other: no credentials in the credentials provider chain";
        assert!(hint(none, None, None).unwrap().contains("--profile NAME"));
        let process = "an error occurred while loading credentials: Error retrieving credentials: \
                       external process exited with code exit status: 1";
        assert!(
            hint(process, None, Some("vault"))
                .unwrap()
                .starts_with("the credential_process of profile vault")
        );
        let denied = "AccessDeniedException: User: x is not authorized to perform: dynamodb:Scan";
        assert!(
            hint(denied, Some(&s), Some("ops"))
                .unwrap()
                .contains("profile ops")
        );
    }

    #[test]
    fn an_error_is_one_line() {
        let e = anyhow::anyhow!("first line\nsecond line").context("doing it");
        assert_eq!(
            error_line(&e, None, None),
            "error: doing it: first line second line"
        );
    }
}
