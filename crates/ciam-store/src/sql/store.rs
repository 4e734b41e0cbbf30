//! [`Store`] on [`SqlStore`]: each operation one statement, one
//! transaction or one grouped write.

use super::*;

#[async_trait]
impl<DB: Exec> Store for SqlStore<DB> {
    async fn ping(&self) -> StoreResult<()> {
        DB::rows(&self.conns, Stmt::new("SELECT 1")).await.map(drop)
    }

    async fn probe_write(&self, value: &str) -> StoreResult<()> {
        self.put_setting("readiness_probe", value).await
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<SettingRow> = self
            .fetch_opt::<SettingRow, _>(Stmt::new("SELECT name, value FROM settings WHERE name = $1").bind(name))
            .await?;
        Ok(row.map(|r| r.value))
    }

    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2";
        self.execute(Stmt::new(sql).bind(name).bind(value)).await.map(drop)
    }

    async fn put_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        Ok(self.execute(Stmt::new(sql).bind(name).bind(value)).await? == 1)
    }

    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        let sql = format!("INSERT INTO apps ({APP_COLUMNS}) VALUES ({})", placeholders(1, 16));
        let stmt = Stmt::new(sql).bind_all(app_args(app)).bind(app.created_at).bind_all(client_args(app));
        self.execute(stmt.bind_all(signup_args(app))).await.map(drop)
    }

    async fn get_app(&self, client_id: &ClientId) -> StoreResult<Option<App>> {
        self.fetch_opt::<AppRow, _>(Stmt::new(SELECT_APP.as_str()).bind(client_id)).await
    }

    async fn list_apps(&self) -> StoreResult<Vec<App>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, client_id");
        self.fetch_all::<AppRow, _>(Stmt::new(sql)).await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let sql = "UPDATE apps SET name = $2, enabled = $3, password_expiry_check = $4, access = $5, \
                   session_ttl = $6, id_token_ttl = $7, client_type = $8, redirect_uris = $9, \
                   post_logout_redirect_uris = $10, initiate_login_uri = $11, secret_digest = $12, \
                   self_registration = $13, sms_auto_register = $14, id_token_alg = $15 WHERE client_id = $1";
        let stmt = Stmt::new(sql).bind_all(app_args(app)).bind_all(client_args(app)).bind_all(signup_args(app));
        Ok(self.execute(stmt).await? == 1)
    }

    async fn delete_app(&self, client_id: &ClientId) -> StoreResult<bool> {
        Ok(self.execute(Stmt::new("DELETE FROM apps WHERE client_id = $1").bind(client_id)).await? == 1)
    }

    async fn add_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<()> {
        let sql = "INSERT INTO app_members (client_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        self.execute(Stmt::new(sql).bind(client_id).bind(user_id)).await.map(drop)
    }

    async fn remove_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<bool> {
        let sql = "DELETE FROM app_members WHERE client_id = $1 AND user_id = $2";
        Ok(self.execute(Stmt::new(sql).bind(client_id).bind(user_id)).await? == 1)
    }

    async fn is_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<bool> {
        let sql = "SELECT 1 AS one FROM app_members WHERE client_id = $1 AND user_id = $2";
        Ok(!DB::rows(&self.conns, Stmt::new(sql).bind(client_id).bind(user_id)).await?.is_empty())
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES ({})", placeholders(1, 10));
        let stmt = Stmt::new(sql)
            .bind_all(profile_args(user))
            .bind(&user.password_hash)
            .bind(user.password_changed_at)
            .bind(user.created_at)
            .bind(user.updated_at);
        self.execute(stmt).await.map(drop)
    }

    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>> {
        // All in one transaction, INSERT_USERS_ROWS users per statement: a
        // taken mobile or id is skipped, not an error (an interrupted import
        // is run again), and the ids given back say which were stored.
        // Statements stay small because SQLite's driver binds values in time
        // quadratic in their number.
        let statements: Vec<Stmt> = users.chunks(INSERT_USERS_ROWS).map(insert_users).collect();
        let rows = DB::transaction_rows(&self.conns, statements).await?;
        let stored = rows.iter().map(|row| decode::<DB, IdRow, IdRow>(row).map(|r| r.id));
        let stored: std::collections::HashSet<String> = stored.collect::<StoreResult<_>>()?;
        Ok(users.iter().map(|user| stored.contains(user.id.as_str())).collect())
    }

    async fn users_after(&self, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2");
        self.fetch_all::<UserRow, _>(Stmt::new(sql).bind(after.map(UserId::as_str)).bind(limit)).await
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.fetch_opt::<UserRow, _>(Stmt::new(SELECT_USER.as_str()).bind(id)).await
    }

    async fn list_users(&self, mobile: Option<&Mobile>, limit: u32, offset: u32) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR mobile = $1) \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        );
        let stmt = Stmt::new(sql).bind(mobile.map(Mobile::as_str)).bind(limit).bind(offset);
        self.fetch_all::<UserRow, _>(stmt).await
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let sql = "UPDATE users SET mobile = $2, user_name = $3, name = $4, email = $5, disabled = $6, \
                   password_changed_at = $7, updated_at = $8 WHERE id = $1";
        let stmt = Stmt::new(sql).bind_all(profile_args(user)).bind(user.password_changed_at).bind(user.updated_at);
        Ok(self.execute(stmt).await? == 1)
    }

    async fn delete_user(&self, id: &UserId) -> StoreResult<bool> {
        Ok(self.execute(Stmt::new("DELETE FROM users WHERE id = $1").bind(id)).await? == 1)
    }

    async fn set_password(&self, user_id: &UserId, hash: &str, changed_at: UnixTime, keep: u32) -> StoreResult<bool> {
        // Each statement does nothing for a user that is not there. The
        // write comes first, so SQLite takes its write lock at once.
        let statements = vec![
            Stmt::new(
                "INSERT INTO password_history (user_id, password_hash, replaced_at) \
                 SELECT id, password_hash, $2 FROM users WHERE id = $1",
            )
            .bind(user_id)
            .bind(changed_at),
            Stmt::new("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(changed_at),
            Stmt::new(
                "DELETE FROM password_history WHERE user_id = $1 AND id NOT IN \
                 (SELECT id FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(user_id)
            .bind(keep),
            Stmt::new("DELETE FROM sessions WHERE user_id = $1").bind(user_id),
            Stmt::new("DELETE FROM oauth_grants WHERE user_id = $1").bind(user_id),
        ];
        let touched = DB::transaction(&self.conns, statements).await?;
        Ok(touched.first().is_some_and(|moved| *moved == 1))
    }

    async fn upgrade_password_hash(&self, user_id: &UserId, old: &str, new: &str) -> StoreResult<()> {
        let sql = "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
        self.execute(Stmt::new(sql).bind(user_id).bind(old).bind(new)).await.map(drop)
    }

    async fn password_history(&self, user_id: &UserId, n: u32) -> StoreResult<Vec<String>> {
        let sql = "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2";
        let rows: Vec<HashRow> = self.fetch_all::<HashRow, _>(Stmt::new(sql).bind(user_id).bind(n)).await?;
        Ok(rows.into_iter().map(|r| r.password_hash).collect())
    }

    async fn failure_state(&self, key: &LockKey) -> StoreResult<Option<FailureState>> {
        let sql = "SELECT failures, locked_until FROM login_failures WHERE lock_key = $1";
        self.fetch_opt::<FailureRow, _>(Stmt::new(sql).bind(key)).await
    }

    async fn login_lookup(
        &self,
        keys: &[LockKey],
        address: Option<&AddressKey>,
        mobile: Option<&Mobile>,
    ) -> StoreResult<Lookup> {
        self.lookup(keys, address, mobile).await
    }

    async fn record_failure(
        &self,
        counters: &[Counter],
        now: UnixTime,
        policy: &LockoutPolicy,
        audit: FailureAudit<'_>,
        place: &str,
    ) -> StoreResult<(Vec<FailureState>, i64)> {
        self.count_failure(counters, now, policy, audit, place).await
    }

    async fn begin_check(
        &self,
        counters: &[Counter],
        now: UnixTime,
        reset_seconds: i64,
        until: UnixTime,
        id: &str,
        address: Option<(&AddressKey, i64)>,
    ) -> StoreResult<(Vec<Guess>, Option<ThrottleState>)> {
        self.take_places(counters, now, reset_seconds, until, id, address).await
    }

    async fn release_place(&self, place: &str) -> StoreResult<()> {
        self.give_back(place).await
    }

    async fn settle_match(&self, keys: &[LockKey], place: &str, now: UnixTime) -> StoreResult<Vec<FailureState>> {
        self.settle(keys, place, now).await
    }

    async fn unlock_account(&self, account: &LockKey) -> StoreResult<()> {
        // Pair keys are `<account>|<address>`; an account key is E.164 or a
        // digest, neither of which holds a LIKE wildcard.
        let sql = "DELETE FROM login_failures WHERE lock_key = $1 OR lock_key LIKE $2";
        self.execute(Stmt::new(sql).bind(account).bind(format!("{account}|%").as_str())).await.map(drop)
    }

    async fn reserve_attempt(
        &self,
        address: &AddressKey,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> StoreResult<ThrottleState> {
        let stmt = RESERVE_ATTEMPT.bind(vec![
            ("ip".into(), address.into()),
            ("now".into(), now.into()),
            ("window_seconds".into(), policy.ip_window_seconds.into()),
        ])?;
        let window: Option<ThrottleState> = self.fetch_opt::<ThrottleRow, _>(stmt).await?;
        window.ok_or_else(|| StoreError::Backend("an attempt's reservation returned no window".into()))
    }

    async fn release_attempt(&self, reservation: &Reservation) -> StoreResult<()> {
        let stmt = RELEASE_ATTEMPT.bind(reserved_values(Some(reservation)))?;
        self.execute(stmt).await.map(drop)
    }

    async fn insert_session(&self, digest: &TokenDigest, session: &Session, now: UnixTime) -> StoreResult<()> {
        self.execute(INSERT_SESSION.bind(session_values(session_args(digest, session, now)).collect())?).await.map(drop)
    }

    async fn insert_session_audited(
        &self,
        digest: &TokenDigest,
        session: &Session,
        now: UnixTime,
        event: &AuditEvent,
        reserved: Option<&Reservation>,
        place: Option<&str>,
    ) -> StoreResult<i64> {
        let values = session_values(session_args(digest, session, now))
            .chain(reserved_values(reserved))
            .chain([("place".to_owned(), Arg::from(place))])
            .chain(event_values(audit_args(event)))
            .collect();
        let stmt = DB::grouped_sql().session.bind(values)?;
        let rows = DB::grouped(&self.conns, stmt).await?;
        let event: Option<GroupedRow> = rows.last().map(DB::decode::<GroupedRow>).transpose().map_err(db_err)?;
        event.and_then(|e| e.id).ok_or_else(|| StoreError::Backend("a session insert returned no event id".into()))
    }

    async fn get_session_user(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<(Session, User)>> {
        self.fetch_opt::<SessionUserRow, _>(Stmt::new(SESSION_USER.as_str()).bind(digest).bind(now)).await
    }

    async fn delete_session(&self, digest: &TokenDigest, client_id: &ClientId) -> StoreResult<bool> {
        let sql = "DELETE FROM sessions WHERE token_digest = $1 AND client_id = $2";
        Ok(self.execute(Stmt::new(sql).bind(digest).bind(client_id)).await? == 1)
    }

    async fn session_app(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<ClientId>> {
        let sql = "SELECT client_id, user_id FROM sessions WHERE token_digest = $1 AND expires_at > $2";
        let member: Option<(ClientId, UserId)> =
            self.fetch_opt::<MemberRow, _>(Stmt::new(sql).bind(digest).bind(now)).await?;
        Ok(member.map(|(client_id, _)| client_id))
    }

    async fn delete_user_sessions(&self, user_id: &UserId) -> StoreResult<u64> {
        let statements = vec![
            Stmt::new("DELETE FROM sessions WHERE user_id = $1").bind(user_id),
            Stmt::new("DELETE FROM oauth_grants WHERE user_id = $1").bind(user_id),
        ];
        Ok(DB::transaction(&self.conns, statements).await?.iter().sum())
    }

    async fn insert_state_grant(&self, digest: &TokenDigest, grant: &StateGrant) -> StoreResult<()> {
        let sql = format!("INSERT INTO state_grants (token_digest, {GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
        let stmt = Stmt::new(sql)
            .bind(digest)
            .bind(&grant.user_id)
            .bind(&grant.client_id)
            .bind(grant.flow.as_str())
            .bind(grant.expires_at);
        self.execute(stmt).await.map(drop)
    }

    async fn get_state_grant(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<StateGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM state_grants WHERE token_digest = $1 AND expires_at > $2");
        self.fetch_opt::<GrantRow, _>(Stmt::new(sql).bind(digest).bind(now)).await
    }

    async fn take_state_grant(
        &self,
        digest: &TokenDigest,
        now: UnixTime,
        flows: &[Flow],
    ) -> StoreResult<Option<StateGrant>> {
        if flows.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "DELETE FROM state_grants WHERE token_digest = $1 AND expires_at > $2 AND flow IN ({}) \
             RETURNING {GRANT_COLUMNS}",
            placeholders(3, flows.len())
        );
        let stmt = Stmt::new(sql).bind(digest).bind(now).bind_all(flows.iter().map(|f| Arg::from(f.as_str())));
        self.fetch_opt::<GrantRow, _>(stmt).await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        // Keys of an algorithm this version does not know are not listed:
        // they are left alone, neither loaded nor published.
        let known = SigningAlg::ALL.map(|alg| format!("'{}'", alg.as_str())).join(", ");
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE alg IN ({known}) ORDER BY created_at DESC, kid DESC");
        self.fetch_all::<KeyRow, _>(Stmt::new(sql)).await
    }

    async fn rotate_signing_keys(
        &self,
        keys: &[SigningKeyRecord],
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<()> {
        let retire = Stmt::new("UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL")
            .bind(now)
            .bind(publish_until);
        let inserts = keys
            .iter()
            .map(|key| insert_key(&SigningKeyRecord { retired_at: None, publish_until: None, ..key.clone() }));
        DB::transaction(&self.conns, std::iter::once(retire).chain(inserts).collect()).await.map(drop)
    }

    async fn replace_private_key(&self, kid: &str, private_pkcs8: &[u8]) -> StoreResult<()> {
        let sql = "UPDATE signing_keys SET private_pkcs8 = $2 WHERE kid = $1";
        self.execute(Stmt::new(sql).bind(kid).bind(private_pkcs8)).await.map(drop)
    }

    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        // The one-current-key index refuses a second current key of an
        // algorithm: the first instance to store one wins, the others store
        // nothing.
        let first = SigningKeyRecord { retired_at: None, publish_until: None, ..key.clone() };
        let stmt = insert_key_then(&first, " ON CONFLICT DO NOTHING");
        Ok(self.execute(stmt).await? == 1)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.execute(insert_key(key)).await.map(drop)
    }

    async fn insert_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.audit.insert(event).await
    }

    async fn count_refusal(&self, event: &AuditEvent) -> StoreResult<()> {
        self.audit.count(event, 1).await
    }

    async fn insert_counted(&self, event: &AuditEvent, count: i64) -> StoreResult<()> {
        self.audit.count(event, count).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let stmt = list_audit(q);
        self.fetch_all::<AuditRow, _>(stmt).await
    }

    async fn login_activity(&self, since: UnixTime) -> StoreResult<Vec<ActivityCount>> {
        let sql = "SELECT at / 3600 AS hour, outcome, CAST(SUM(count) AS BIGINT) AS count FROM audit_events \
                   WHERE at >= $1 AND action = $2 GROUP BY at / 3600, outcome ORDER BY hour, outcome";
        let stmt = Stmt::new(sql).bind(since).bind(Action::Login.as_str());
        self.fetch_all::<ActivityRow, _>(stmt).await
    }

    async fn locked_users(&self, now: UnixTime, limit: u32) -> StoreResult<Vec<(User, UnixTime)>> {
        // An account's own counter is keyed by its mobile (one index probe
        // per lock): unregistered numbers and per-address locks stay out.
        let sql = format!(
            "SELECT {}, f.locked_until FROM login_failures f JOIN users u ON u.mobile = f.lock_key \
             WHERE f.locked_until > $1 ORDER BY f.locked_until DESC, u.mobile LIMIT $2",
            prefixed_user_columns()
        );
        self.fetch_all::<LockedUserRow, _>(Stmt::new(sql).bind(now).bind(limit)).await
    }

    async fn user_apps(&self, user_id: &UserId) -> StoreResult<Vec<ClientId>> {
        let sql = "SELECT client_id, user_id FROM app_members WHERE user_id = $1 ORDER BY client_id";
        let rows: Vec<(ClientId, UserId)> = self.fetch_all::<MemberRow, _>(Stmt::new(sql).bind(user_id)).await?;
        Ok(rows.into_iter().map(|(client_id, _)| client_id).collect())
    }

    async fn app_members(&self, client_id: &ClientId, limit: u32) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {} FROM users u JOIN app_members m ON m.user_id = u.id WHERE m.client_id = $1 \
             ORDER BY u.mobile LIMIT $2",
            prefixed_user_columns()
        );
        self.fetch_all::<UserRow, _>(Stmt::new(sql).bind(client_id).bind(limit)).await
    }

    async fn insert_console_session(
        &self,
        digest: &TokenDigest,
        admin_digest: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO console_sessions (token_digest, admin_digest, expires_at) VALUES ($1, $2, $3)";
        self.execute(Stmt::new(sql).bind(digest).bind(admin_digest).bind(expires_at)).await.map(drop)
    }

    async fn console_session(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<(UnixTime, String)>> {
        let sql = "SELECT expires_at, admin_digest FROM console_sessions WHERE token_digest = $1 AND expires_at > $2";
        self.fetch_opt::<ConsoleSessionRow, _>(Stmt::new(sql).bind(digest).bind(now)).await
    }

    async fn delete_console_session(&self, digest: &TokenDigest) -> StoreResult<()> {
        self.execute(Stmt::new("DELETE FROM console_sessions WHERE token_digest = $1").bind(digest)).await.map(drop)
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>> {
        let rows: Vec<SettingRow> =
            self.fetch_all::<SettingRow, _>(Stmt::new("SELECT name, value FROM settings ORDER BY name")).await?;
        Ok(rows.into_iter().map(|r| (r.name, r.value)).collect())
    }

    async fn list_members(&self) -> StoreResult<Vec<(ClientId, UserId)>> {
        let sql = "SELECT client_id, user_id FROM app_members ORDER BY client_id, user_id";
        self.fetch_all::<MemberRow, _>(Stmt::new(sql)).await
    }

    async fn list_password_history(&self) -> StoreResult<Vec<HistoryEntry>> {
        let sql = "SELECT user_id, password_hash, replaced_at FROM password_history ORDER BY id";
        self.fetch_all::<HistoryRow, _>(Stmt::new(sql)).await
    }

    async fn insert_password_history(&self, entry: &HistoryEntry) -> StoreResult<()> {
        let sql = "INSERT INTO password_history (user_id, password_hash, replaced_at) VALUES ($1, $2, $3)";
        self.execute(Stmt::new(sql).bind(&entry.user_id).bind(&entry.password_hash).bind(entry.replaced_at))
            .await
            .map(drop)
    }

    async fn list_sessions(&self, now: UnixTime) -> StoreResult<Vec<StoredSession>> {
        let sql = "SELECT token_digest, user_id, client_id, created_at, expires_at FROM sessions \
                   WHERE expires_at > $1 ORDER BY created_at, token_digest";
        self.fetch_all::<SessionRow, _>(Stmt::new(sql).bind(now)).await
    }

    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let sql = format!("SELECT {} FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2", AUDIT_COLUMNS.as_str());
        self.fetch_all::<AuditRow, _>(Stmt::new(sql).bind(after).bind(limit)).await
    }

    async fn purge(&self, what: Purge, limit: u32) -> StoreResult<u64> {
        self.execute(purge(what, limit)).await
    }

    async fn take_lease(&self, name: &str, holder: &str, now: UnixTime, until: UnixTime) -> StoreResult<bool> {
        let sql = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
                   WHERE leases.expires_at <= $4 OR leases.holder = $2";
        Ok(self.execute(Stmt::new(sql).bind(name).bind(holder).bind(until).bind(now)).await? == 1)
    }
}
