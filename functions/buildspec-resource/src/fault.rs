//! Test-only faults, compiled in with the `fault-injection` feature: a `FaultInjection`
//! resource property of `panic` makes the handler panic mid-request.

use serde_json::Value;

pub(crate) async fn inject(properties: &mut Value) {
    let fault = properties
        .as_object_mut()
        .and_then(|p| p.remove("FaultInjection"));
    if fault.as_ref().and_then(Value::as_str) == Some("panic") {
        tokio::task::yield_now().await;
        #[allow(clippy::panic)]
        {
            panic!("injected fault: panic requested by the FaultInjection property");
        }
    }
}
