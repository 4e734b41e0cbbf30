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
        let group = DB::grouped_sql()
            .check(counters.len(), address.is_some())
            .ok_or_else(|| StoreError::Backend(format!("no check group for {} counters", counters.len())))?;
        let mut values: Vec<(String, Arg)> = vec![
            ("now".into(), now.into()),
            ("reset_seconds".into(), reset_seconds.into()),
            ("place".into(), id.into()),
            ("until".into(), until.into()),
            ("counters".into(), Arg::Int(counters.len() as i64)),
        ];
        if let Some((ip, window_seconds)) = address {
            values.push(("ip".into(), ip.into()));
            values.push(("window_seconds".into(), window_seconds.into()));
        }
        for (i, counter) in counters.iter().enumerate() {
            values.push((format!("key{i}"), Arg::from(&counter.key)));
            values.push((format!("limit{i}"), Arg::from(counter.limit)));
        }
        // Each counter's row lock, then its place, in one transaction: every
        // later statement sees what the counter's earlier holders committed.
        // A check whose caller went away meanwhile gives back what it took.
        let undo = undo_check::<DB>(id, address.map(|(ip, _)| ip.clone()), counters.len())?;
        let rows = DB::grouped_or_undone(&self.checks, group.bind(values)?, undo).await?;
        let rows: Vec<CheckRow> = rows.iter().map(DB::decode::<CheckRow>).collect::<Result<_, _>>().map_err(db_err)?;
        checked(counters.len(), rows)
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

/// The guesses and the address's window of a grouped check of `n`
/// counters, from its rows (see `grouped::sqlite_check`).
fn checked(n: usize, rows: Vec<CheckRow>) -> StoreResult<(Vec<Guess>, Option<ThrottleState>)> {
    let broken = || StoreError::Backend("a check's group returned no counter".into());
    let mut states = vec![None; n];
    let mut placed = vec![false; n];
    let mut window = None;
    for row in rows {
        let part = usize::try_from(row.part).map_err(|_| broken())?;
        match (part / 2, part % 2) {
            (i, 0) if i == n => {
                let failures = row.failures.ok_or_else(broken)?;
                window = Some(ThrottleRow::new(row.window_start.ok_or_else(broken)?, failures).into());
            }
            (i, 0) if i < n => {
                let state = FailureRow::new(row.failures.ok_or_else(broken)?, row.locked_until);
                states[i] = Some(FailureState::try_from(state).map_err(db_err)?);
            }
            (i, 1) if i < n => placed[i] = true,
            _ => return Err(broken()),
        }
    }
    let guesses = states
        .into_iter()
        .zip(placed)
        .map(|(state, reserved)| Ok(Guess { state: state.ok_or_else(broken)?, reserved }))
        .collect::<StoreResult<Vec<Guess>>>()?;
    Ok((guesses, window))
}

/// What gives back a check's places, and its attempt in its address's
/// window when it took one, after its caller went away (see
/// [`Exec::grouped_or_undone`]).
fn undo_check<DB: Exec>(place: &str, ip: Option<AddressKey>, n: usize) -> StoreResult<Undo<DB>> {
    let release = RELEASE_PLACE.bind(vec![("place".into(), place.into())])?;
    Ok(Box::new(move |rows: &[DB::Row]| {
        let window = rows.iter().filter_map(|row| DB::decode::<CheckRow>(row).ok()).find(|r| r.part == 2 * n as i64);
        let taken = ip.zip(window.and_then(|w| w.window_start));
        let attempt = taken.and_then(|(key, window_start)| {
            RELEASE_ATTEMPT.bind(reserved_values(Some(&Reservation { key, window_start }))).ok()
        });
        std::iter::once(release).chain(attempt).collect()
    }))
}
