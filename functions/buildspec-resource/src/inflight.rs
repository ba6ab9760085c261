//! The request being worked on, kept where a panic hook can reach it, so that a panic still ends
//! in a FAILED answer: with `panic = "unwind"` and with `panic = "abort"` alike, because the hook
//! runs before either. Whoever takes the request out of the slot answers it; nobody else does.

use std::panic::PanicHookInfo;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use flavor_ci::custom_resource::Response;
use lambda_runtime::tracing::error;

use crate::respond::{Responder, ResponseUrl};

/// An unanswered request, with the FAILED response to give if the work panics.
#[derive(Debug)]
pub(crate) struct Armed {
    pub(crate) url: ResponseUrl,
    pub(crate) response: Response,
    pub(crate) answer_until: Instant,
}

static SLOT: Mutex<Option<Armed>> = Mutex::new(None);

/// Records the request now being worked on.
pub(crate) fn arm(armed: Armed) {
    if let Ok(mut slot) = SLOT.lock() {
        *slot = Some(armed);
    }
}

/// Takes the request out of the slot; `None` if it has been answered already.
pub(crate) fn disarm() -> Option<Armed> {
    match SLOT.lock() {
        Ok(mut slot) => slot.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

/// Whether a request is waiting for its answer.
pub(crate) fn is_armed() -> bool {
    match SLOT.lock() {
        Ok(slot) => slot.is_some(),
        Err(poisoned) => poisoned.into_inner().is_some(),
    }
}

/// Installs a panic hook that answers the armed request FAILED, then runs the previous hook.
pub(crate) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if let Some(armed) = disarm() {
            answer_after_panic(armed, info);
        }
    }));
}

fn answer_after_panic(mut armed: Armed, info: &PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    let place = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    error!(panic = %message, location = %place, "the function panicked; answering FAILED");
    armed.response.reason = format!(
        "internal error in the buildspec resource function: {message}{place}; this is a bug, please report it with the function's log, then retry the stack operation"
    );
    let body = Bytes::from(armed.response.to_body());
    // The panicking thread may be a runtime worker, so the PUT runs on a thread of its own.
    let sender = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let (Ok(runtime), Ok(responder)) = (runtime, Responder::new()) else {
            error!("cannot start the HTTP client to answer after the panic");
            return;
        };
        let until = tokio::time::Instant::from_std(armed.answer_until);
        let delivery = runtime.block_on(responder.send(&armed.url, body, until));
        error!(?delivery, "answer after panic");
    });
    let _ = sender.join();
}
