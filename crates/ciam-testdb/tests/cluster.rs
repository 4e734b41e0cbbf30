//! A throwaway cluster starts from the installed server programs, takes
//! connections, is found again rather than started twice, and stops.

use sqlx::Connection;

#[tokio::test]
async fn a_throwaway_cluster_starts_is_reused_and_stops() {
    let folder = std::env::temp_dir().join(format!("ciam-cluster-test-{}", uuid::Uuid::new_v4().simple()));
    let url = ciam_testdb::cluster::ensure(&folder).expect("a cluster starts");
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    assert_ne!(url, "postgres://postgres@127.0.0.1:5432");
    let mut conn = sqlx::PgConnection::connect(&format!("{url}/postgres")).await.expect("it takes connections");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.expect("query");
    assert_eq!(one, 1);
    conn.close().await.expect("close");

    assert_eq!(ciam_testdb::cluster::ensure(&folder).expect("found again"), url, "the running one is reused");
    ciam_testdb::cluster::stop(&folder).expect("it stops");
    let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    assert!(!ciam_testdb::cluster::answers(port));
    let _ = std::fs::remove_dir_all(&folder);
}
