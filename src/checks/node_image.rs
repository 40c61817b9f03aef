//! Custom node image acceptance (pure): a custom image is the customer's responsibility, so
//! installing one needs a recorded acceptance of that (who and when).

use super::{Category, CheckResult};
use crate::spec::NodeImage;

/// The node image finding.
pub fn check(image: &NodeImage) -> CheckResult {
    let id = "spec.node-image";
    match image {
        NodeImage::Default => CheckResult::pass(
            id,
            Category::Spec,
            "cloud.cluster.nodeImage",
            "the provider's default node image is used",
        ),
        NodeImage::Custom {
            image,
            acceptance: Some(a),
        } => CheckResult::pass(
            id,
            Category::Spec,
            image,
            format!(
                "custom node image; responsibility accepted by {} at {}",
                a.by, a.at
            ),
        ),
        NodeImage::Custom {
            image,
            acceptance: None,
        } => CheckResult::fail(
            id,
            Category::Spec,
            image,
            "a custom node image is the customer's responsibility, and no acceptance is recorded",
            "record who accepted it and when: set nodeImage.acceptedBy and nodeImage.acceptedAt (RFC 3339), or use type: default",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::spec::Acceptance;

    #[test]
    fn custom_needs_acceptance() {
        assert_eq!(check(&NodeImage::Default).status, Status::Pass);
        let none = NodeImage::Custom {
            image: "ami-1".into(),
            acceptance: None,
        };
        assert_eq!(check(&none).status, Status::Fail);
        let at = time::macros::datetime!(2026-11-20 14:00 UTC);
        let given = NodeImage::Custom {
            image: "ami-1".into(),
            acceptance: Some(Acceptance {
                by: "Jane".into(),
                at,
            }),
        };
        let r = check(&given);
        assert_eq!(r.status, Status::Pass);
        assert!(r.message.contains("Jane"));
    }
}
