//! Service Quotas over JSON 1.1 (the Service Quotas API Reference): `GetServiceQuota` for the
//! EC2 On-Demand Standard vCPU quota; any other quota is `NoSuchResourceException`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AwsError;
use super::world::World;
use crate::cloud::eks::{STANDARD_VCPU_QUOTA, STANDARD_VCPU_QUOTA_NAME};

/// Answers a Service Quotas request.
pub(crate) fn answer(w: &World, op: &str, body: &[u8]) -> Result<Response, AwsError> {
    if op != "servicequotas:GetServiceQuota" {
        return Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("{op} is not an operation of this stand-in"),
        ));
    }
    if w.denied.contains("servicequotas:GetServiceQuota") {
        return Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: servicequotas:GetServiceQuota",
                w.caller
            ),
        ));
    }
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| AwsError::new(400, "IllegalArgumentException", e.to_string()))?;
    let (service, code) = (
        input["ServiceCode"].as_str().unwrap_or_default(),
        input["QuotaCode"].as_str().unwrap_or_default(),
    );
    match (service, code, w.vcpu_quota) {
        ("ec2", STANDARD_VCPU_QUOTA, Some(value)) => Ok((
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            json!({"Quota": {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": format!("arn:aws:servicequotas:{}:{}:ec2/{STANDARD_VCPU_QUOTA}", w.region, w.account),
                "QuotaCode": STANDARD_VCPU_QUOTA,
                "QuotaName": STANDARD_VCPU_QUOTA_NAME,
                "Value": value,
                "Unit": "None",
                "Adjustable": true,
                "GlobalQuota": false,
            }})
            .to_string(),
        )
            .into_response()),
        _ => Err(AwsError::new(
            400,
            "NoSuchResourceException",
            format!("The request failed because the specified quota {service}/{code} does not exist."),
        )),
    }
}
