//! Service Quotas over JSON 1.1 (the Service Quotas API Reference): `GetServiceQuota` of the
//! world's quotas; an unknown quota is `NoSuchResourceException`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AwsError, authorize};
use crate::world::World;

/// Answers a Service Quotas request.
pub(crate) fn answer(w: &World, op: &str, body: &[u8]) -> Result<Response, AwsError> {
    if op != "servicequotas:GetServiceQuota" {
        return Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("{op} is not an operation of this stand-in"),
        ));
    }
    authorize(
        w,
        (400, "AccessDeniedException"),
        "servicequotas:GetServiceQuota",
        "*",
        &[],
    )?;
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| AwsError::new(400, "IllegalArgumentException", e.to_string()))?;
    let (service, code) = (
        input["ServiceCode"].as_str().unwrap_or_default(),
        input["QuotaCode"].as_str().unwrap_or_default(),
    );
    match w.quotas.get(code).filter(|_| service == "ec2") {
        Some(q) => Ok((
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            json!({"Quota": {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": format!("arn:aws:servicequotas:{}:{}:ec2/{code}", w.region, w.account),
                "QuotaCode": code,
                "QuotaName": q.name,
                "Value": q.limit,
                "Unit": "None",
                "Adjustable": true,
                "GlobalQuota": false,
            }})
            .to_string(),
        )
            .into_response()),
        None => Err(AwsError::new(
            400,
            "NoSuchResourceException",
            format!(
                "The request failed because the specified quota {service}/{code} does not exist."
            ),
        )),
    }
}
