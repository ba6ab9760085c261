//! Failure notifications on an SNS topic.

use std::fmt;

use aws_sdk_sns::Client;
use aws_sdk_sns::error::ProvideErrorMetadata;
use flavor_ci_aws::SdkClient;

pub(crate) trait Notifier: Send + Sync + fmt::Debug + 'static {
    fn publish(
        &self,
        topic: &str,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Amazon SNS.
pub(crate) type Sns = SdkClient<Client>;

impl Notifier for Sns {
    async fn publish(&self, topic: &str, subject: &str, message: &str) -> Result<(), String> {
        self.get()
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
