//! The standard gRPC health service (`grpc.health.v1.Health`) on the Flight port, for load
//! balancers and Kubernetes probes.
//!
//! Invariants:
//! - It answers without a token: it tells whether the server serves, nothing else.
//! - SERVING for the server as a whole (`""`) and for `arrow.flight.protocol.FlightService`
//!   until shutdown begins; then NOT_SERVING, which every `Watch` stream receives before it
//!   ends (an open `Watch` would otherwise hold a graceful shutdown forever).

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::{HealthReporter, health_reporter};

/// `arrow.flight.protocol.FlightService`, as gRPC names it.
const FLIGHT_SERVICE: &str = <FlightServiceServer<crate::FrontDoor> as NamedService>::NAME;

/// The serving status a front door reports.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

/// The health service to add to a front door's server, and the handle that reports its status.
pub async fn health_service() -> (
    Health,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = health_reporter();
    reporter
        .set_service_status(FLIGHT_SERVICE, ServingStatus::Serving)
        .await;
    (Health { reporter }, service)
}

impl Health {
    /// Shutdown began: NOT_SERVING, told to every watcher, whose streams then end.
    pub async fn draining(self) {
        let mut reporter = self.reporter;
        for service in ["", FLIGHT_SERVICE] {
            reporter.set_service_status(service, ServingStatus::NotServing).await;
            reporter.clear_service_status(service).await;
        }
    }
}
