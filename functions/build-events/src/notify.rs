//! Failure notifications on an SNS topic.

use std::fmt;
use std::sync::Arc;

use aws_sdk_sns::Client;
use aws_sdk_sns::error::ProvideErrorMetadata;
use flavor_ci_aws::{FromSdk, LazySdk};

pub(crate) trait Notifier: Send + Sync + fmt::Debug + 'static {
    fn publish(
        &self,
        topic: &str,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

#[derive(Debug, Clone)]
pub(crate) struct Sns {
    client: Arc<FromSdk<Client>>,
}

impl Sns {
    /// The client is built on first use.
    pub(crate) fn on_first_use(sdk: Arc<LazySdk>) -> Self {
        Self {
            client: Arc::new(FromSdk::on_first_use(sdk, Client::new)),
        }
    }
}

impl Notifier for Sns {
    async fn publish(&self, topic: &str, subject: &str, message: &str) -> Result<(), String> {
        self.client
            .get()
            .await
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let hint = match e.code() {
                    Some("AuthorizationError") => {
                        "; allow the function's role sns:Publish on the topic"
                    }
                    Some("NotFound") => "; create the topic or correct NotificationTopicArn",
                    _ => "",
                };
                flavor_ci_aws::sdk_error_message(&e, hint)
            })
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub(crate) struct Recorded {
        pub(crate) messages: Mutex<Vec<(String, String, String)>>,
    }

    impl Notifier for Recorded {
        async fn publish(&self, topic: &str, subject: &str, message: &str) -> Result<(), String> {
            self.messages
                .lock()
                .unwrap()
                .push((topic.into(), subject.into(), message.into()));
            Ok(())
        }
    }
}
