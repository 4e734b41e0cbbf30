//! [`GrantStore`] on [`SqlStore`]: the OpenID Connect grants, one table,
//! each operation one statement (or one transaction).

use ciam_core::store::{Grant, GrantKind, GrantStore};
use sqlx::FromRow;

use super::*;

const COLUMNS: &str = "digest, kind, client_id, user_id, family, body, uses, expires_at";

#[derive(Debug, FromRow)]
pub(crate) struct OauthRow {
    digest: String,
    kind: String,
    client_id: Option<String>,
    user_id: Option<String>,
    family: Option<String>,
    body: String,
    uses: i64,
    expires_at: i64,
}

impl TryFrom<OauthRow> for Grant {
    type Error = sqlx::Error;

    fn try_from(r: OauthRow) -> Result<Self, sqlx::Error> {
        Ok(Grant {
            digest: TokenDigest::new(r.digest),
            kind: GrantKind::parse(&r.kind)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown grant kind {}", r.kind).into()))?,
            client_id: r.client_id.map(ClientId::new),
            user_id: r.user_id.map(UserId::new),
            family: r.family,
            body: r.body,
            uses: r.uses,
            expires_at: r.expires_at,
        })
    }
}

fn insert(grant: &Grant) -> Stmt {
    Stmt::new(format!("INSERT INTO oauth_grants ({COLUMNS}) VALUES ({})", placeholders(1, 8)))
        .bind(&grant.digest)
        .bind(grant.kind.as_str())
        .bind(grant.client_id.as_ref().map(ClientId::as_str))
        .bind(grant.user_id.as_ref().map(UserId::as_str))
        .bind(&grant.family)
        .bind(&grant.body)
        .bind(grant.uses)
        .bind(grant.expires_at)
}

fn delete(digest: &TokenDigest, kind: GrantKind) -> Stmt {
    Stmt::new("DELETE FROM oauth_grants WHERE digest = $1 AND kind = $2").bind(digest).bind(kind.as_str())
}

#[async_trait]
impl<DB: Exec> GrantStore for SqlStore<DB> {
    async fn insert_grants(&self, grants: &[Grant]) -> StoreResult<()> {
        match grants {
            [] => Ok(()),
            [one] => self.execute(insert(one)).await.map(drop),
            many => DB::transaction(&self.conns, many.iter().map(insert).collect()).await.map(drop),
        }
    }

    async fn get_grant(&self, digest: &TokenDigest, kind: GrantKind, now: UnixTime) -> StoreResult<Option<Grant>> {
        let sql = format!("SELECT {COLUMNS} FROM oauth_grants WHERE digest = $1 AND kind = $2 AND expires_at > $3");
        self.fetch_opt::<OauthRow, _>(Stmt::new(sql).bind(digest).bind(kind.as_str()).bind(now)).await
    }

    async fn use_grant(&self, digest: &TokenDigest, kind: GrantKind) -> StoreResult<Option<Grant>> {
        let sql =
            format!("UPDATE oauth_grants SET uses = uses + 1 WHERE digest = $1 AND kind = $2 RETURNING {COLUMNS}");
        self.fetch_opt::<OauthRow, _>(Stmt::new(sql).bind(digest).bind(kind.as_str())).await
    }

    async fn commit_sign_in(
        &self,
        grants: &[Grant],
        spent: &[(TokenDigest, GrantKind)],
        reserved: Option<&Reservation>,
        place: Option<&str>,
    ) -> StoreResult<()> {
        let mut statements: Vec<Stmt> = grants.iter().map(insert).collect();
        statements.extend(spent.iter().map(|(digest, kind)| delete(digest, *kind)));
        if let Some(reserved) = reserved {
            statements.push(RELEASE_ATTEMPT.bind(reserved_values(Some(reserved)))?);
        }
        if let Some(place) = place {
            statements.push(RELEASE_PLACE.bind(vec![("place".into(), place.into())])?);
        }
        DB::transaction(&self.conns, statements).await.map(drop)
    }

    async fn delete_grant(&self, digest: &TokenDigest, kind: GrantKind) -> StoreResult<bool> {
        Ok(self.execute(delete(digest, kind)).await? == 1)
    }

    async fn revoke_family(&self, family: &str) -> StoreResult<u64> {
        self.execute(Stmt::new("DELETE FROM oauth_grants WHERE family = $1").bind(family)).await
    }

    async fn revoke_user_grants(&self, user_id: &UserId) -> StoreResult<u64> {
        self.execute(Stmt::new("DELETE FROM oauth_grants WHERE user_id = $1").bind(user_id)).await
    }
}
