//! The lockout and throttle reads and writes of every password attempt,
//! each one statement or one grouped write (see [`crate::grouped`]).

use super::*;

impl<DB: Exec> SqlStore<DB> {
    pub(super) async fn lookup(
        &self,
        keys: &[LockKey],
        address: Option<&AddressKey>,
        mobile: Option<&Mobile>,
    ) -> StoreResult<Lookup> {
        let [first, rest @ ..] = keys else {
            return Err(StoreError::Backend("a lookup needs a failure counter".into()));
        };
        let stmt = Stmt::new(LOGIN_LOOKUP.as_str())
            .bind(first)
            .bind(rest.first().map(LockKey::as_str))
            .bind(address.map(AddressKey::as_str))
            .bind(mobile.map(Mobile::as_str));
        let row: Option<LookupRow> = self.fetch_opt::<LookupRow, _>(stmt).await?;
        let row = row.ok_or_else(|| StoreError::Backend("the login lookup returned no row".into()))?;
        row.into_lookup(keys.len()).map_err(db_err)
    }

    pub(super) async fn count_failure(
        &self,
        counters: &[Counter],
        now: UnixTime,
        policy: &LockoutPolicy,
        audit: FailureAudit<'_>,
        place: &str,
    ) -> StoreResult<(Vec<FailureState>, i64)> {
        let group = DB::grouped_sql()
            .failure(counters.len())
            .ok_or_else(|| StoreError::Backend(format!("no failure group for {} counters", counters.len())))?;
        let mut values: Vec<(String, Arg)> = vec![
            ("now".into(), now.into()),
            ("lock_seconds".into(), policy.lock_seconds.into()),
            ("reset_seconds".into(), policy.failure_reset_seconds.into()),
            ("locked_outcome".into(), audit.locked.as_str().into()),
            ("place".into(), place.into()),
        ];
        for (i, counter) in counters.iter().enumerate() {
            values.push((format!("key{i}"), Arg::from(&counter.key)));
            values.push((format!("limit{i}"), Arg::from(counter.limit)));
        }
        values.extend(event_values(audit_args(audit.event)));
        let stmt = group.bind(values)?;
        let rows = DB::grouped(&self.conns, stmt).await?;
        let rows: Vec<GroupedRow> =
            rows.iter().map(DB::decode::<GroupedRow>).collect::<Result<_, _>>().map_err(db_err)?;
        // A row per counter, in order, then the event's.
        let broken = || StoreError::Backend("a failure count returned no count or no event id".into());
        let (event, counts) = rows.split_last().ok_or_else(broken)?;
        let id = event.id.ok_or_else(broken)?;
        let states = counts
            .iter()
            .map(|r| {
                let failures = r.failures.ok_or_else(broken)?;
                FailureRow::new(failures, r.locked_until).try_into().map_err(db_err)
            })
            .collect::<StoreResult<Vec<FailureState>>>()?;
        if states.len() != counters.len() {
            return Err(broken());
        }
        Ok((states, id))
    }

    pub(super) async fn take_places(
        &self,
        counters: &[Counter],
        now: UnixTime,
        reset_seconds: i64,
        until: UnixTime,
        id: &str,
        address: Option<(&AddressKey, i64)>,
    ) -> StoreResult<(Vec<Guess>, Option<ThrottleState>)> {
        let mut stmts = Vec::with_capacity(2 * counters.len() + 1);
        for counter in counters {
            let key = || ("key".to_owned(), Arg::from(&counter.key));
            let at = || ("now".to_owned(), Arg::from(now));
            stmts.push(LOCK_COUNTER.bind(vec![key(), at(), ("reset_seconds".into(), reset_seconds.into())])?);
            stmts.push(TAKE_PLACE.bind(vec![
                key(),
                at(),
                ("place".into(), id.into()),
                ("until".into(), until.into()),
                ("limit".into(), counter.limit.into()),
            ])?);
        }
        if let Some((ip, window_seconds)) = address {
            stmts.push(RESERVE_PLACED_ATTEMPT.bind(vec![
                ("ip".into(), ip.into()),
                ("now".into(), now.into()),
                ("window_seconds".into(), window_seconds.into()),
                ("place".into(), id.into()),
                ("counters".into(), Arg::Int(counters.len() as i64)),
            ])?);
        }
        // Each counter's row lock, then its place: every later statement
        // sees what the counter's earlier holders committed.
        let mut each = DB::transaction_each(&self.conns, stmts).await?.into_iter();
        let broken = || StoreError::Backend("a check's transaction returned no counter".into());
        let mut guesses = Vec::with_capacity(counters.len());
        for _ in counters {
            let counter = each.next().ok_or_else(broken)?;
            let row = counter.first().ok_or_else(broken)?;
            let state = DB::decode::<FailureRow>(row).map_err(db_err)?.try_into().map_err(db_err)?;
            guesses.push(Guess { state, reserved: each.next().is_some_and(|place| !place.is_empty()) });
        }
        let window = match each.next().as_deref() {
            Some([row, ..]) => Some(DB::decode::<ThrottleRow>(row).map_err(db_err)?.into()),
            _ => None,
        };
        Ok((guesses, window))
    }

    pub(super) async fn give_back(&self, place: &str) -> StoreResult<()> {
        self.execute(RELEASE_PLACE.bind(vec![("place".into(), place.into())])?).await.map(drop)
    }

    pub(super) async fn settle(&self, keys: &[LockKey], place: &str, now: UnixTime) -> StoreResult<Vec<FailureState>> {
        let mut stmts = vec![RELEASE_PLACE.bind(vec![("place".into(), place.into())])?];
        for key in keys {
            stmts.push(SETTLE_COUNTER.bind(vec![("key".into(), key.into()), ("now".into(), now.into())])?);
        }
        // One transaction: the places go with the counts they were held on.
        let rows = DB::transaction_rows(&self.conns, stmts).await?;
        rows.iter().map(|row| DB::decode::<FailureRow>(row).map_err(db_err)?.try_into().map_err(db_err)).collect()
    }
}
