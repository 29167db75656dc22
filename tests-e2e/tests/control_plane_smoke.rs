use vsc_e2e::control_plane::ControlPlane;

#[tokio::test]
async fn the_control_plane_starts_and_answers() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
}
