//! [`SmsStore`] on [`SqlStore`]: the live codes and the SMS windows, each
//! count one conditional upsert, so that no window ever holds more than its
//! `max` however many instances count at once.

use ciam_core::store::sms::{CodeCheck, NewCode, SmsStore, Taken, Window};
use sqlx::FromRow;

use super::*;

#[derive(Debug, FromRow)]
struct WindowRow {
    ends_at: i64,
}

#[derive(Debug, FromRow)]
struct DigestRow {
    digest: String,
}

/// Counts one more in a window: a window that has ended starts again at 1;
/// one that holds `max` already is left alone and gives no row.
fn take(window: &Window, now: UnixTime) -> Stmt {
    Stmt::new(
        "INSERT INTO sms_windows (key, ends_at, count) VALUES ($1, $2 + $3, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           ends_at = CASE WHEN sms_windows.ends_at <= $2 THEN $2 + $3 ELSE sms_windows.ends_at END, \
           count = CASE WHEN sms_windows.ends_at <= $2 THEN 1 ELSE sms_windows.count + 1 END \
         WHERE sms_windows.ends_at <= $2 OR sms_windows.count < $4 \
         RETURNING ends_at",
    )
    .bind(window.key.as_str())
    .bind(now)
    .bind(window.window_seconds)
    .bind(window.max)
}

fn give(taken: &Taken) -> Stmt {
    Stmt::new("UPDATE sms_windows SET count = count - 1 WHERE key = $1 AND ends_at = $2 AND count > 0")
        .bind(taken.key.as_str())
        .bind(taken.ends_at)
}

impl<DB: Exec> SqlStore<DB> {
    /// The window each statement of `each` counted in, `None` where it
    /// refused.
    fn taken(windows: &[Window], each: &[Vec<DB::Row>]) -> StoreResult<Vec<Option<Taken>>> {
        windows
            .iter()
            .zip(each)
            .map(|(window, rows)| {
                rows.first()
                    .map(|row| {
                        let ends_at = DB::decode::<WindowRow>(row).map_err(db_err)?.ends_at;
                        Ok(Taken { key: window.key.clone(), ends_at })
                    })
                    .transpose()
            })
            .collect()
    }
}

#[async_trait]
impl<DB: Exec> SmsStore for SqlStore<DB> {
    async fn take_windows(&self, windows: &[Window], now: UnixTime) -> StoreResult<Result<Vec<Taken>, (usize, i64)>> {
        // All or nothing: a window that refuses rolls the others back, so
        // no window ever holds a send that was refused.
        let each = match DB::transaction_all(&self.conns, windows.iter().map(|w| take(w, now)).collect()).await? {
            Ok(each) => each,
            Err(refused) => {
                let sql =
                    Stmt::new("SELECT ends_at FROM sms_windows WHERE key = $1").bind(windows[refused].key.as_str());
                let ends_at = match DB::rows(&self.conns, sql).await?.first() {
                    Some(row) => DB::decode::<WindowRow>(row).map_err(db_err)?.ends_at,
                    None => now + windows[refused].window_seconds,
                };
                return Ok(Err((refused, (ends_at - now).max(1))));
            }
        };
        Ok(Ok(Self::taken(windows, &each)?.into_iter().flatten().collect()))
    }

    async fn put_code(&self, code: &NewCode<'_>) -> StoreResult<()> {
        let sql = "INSERT INTO sms_codes (mobile, kind, digest, checks, expires_at) VALUES ($1, $2, $3, 0, $4) \
                   ON CONFLICT (mobile, kind) DO UPDATE SET digest = $3, checks = 0, expires_at = $4";
        let stmt = Stmt::new(sql).bind(code.mobile).bind(code.kind).bind(code.digest).bind(code.expires_at);
        self.execute(stmt).await.map(drop)
    }

    async fn check_code(
        &self,
        mobile: &Mobile,
        kind: &str,
        day: &Window,
        now: UnixTime,
        max_checks: u32,
    ) -> StoreResult<CodeCheck> {
        // The entry is counted in the number's day first; the live code's
        // comparison only when the day took it.
        let rows = DB::rows(&self.conns, take(day, now)).await?;
        let Some(day) = Self::taken(std::slice::from_ref(day), &[rows])?.pop().flatten() else {
            return Ok(CodeCheck::NoneLeft);
        };
        let compare = Stmt::new(
            "UPDATE sms_codes SET checks = checks + 1 \
             WHERE mobile = $1 AND kind = $2 AND expires_at > $3 AND checks < $4 RETURNING digest",
        );
        let rows = DB::rows(&self.conns, compare.bind(mobile).bind(kind).bind(now).bind(max_checks)).await?;
        Ok(match rows.first() {
            Some(row) => CodeCheck::Live { digest: DB::decode::<DigestRow>(row).map_err(db_err)?.digest, day },
            None => CodeCheck::NoCode { day },
        })
    }

    async fn unmatch_code(&self, mobile: &Mobile, kind: &str, digest: &str, day: &Taken) -> StoreResult<()> {
        let check = Stmt::new(
            "UPDATE sms_codes SET checks = checks - 1 WHERE mobile = $1 AND kind = $2 AND digest = $3 AND checks > 0",
        )
        .bind(mobile)
        .bind(kind)
        .bind(digest);
        DB::transaction(&self.conns, vec![check, give(day)]).await.map(drop)
    }

    async fn forget_codes(&self, mobile: &Mobile) -> StoreResult<u64> {
        self.execute(Stmt::new("DELETE FROM sms_codes WHERE mobile = $1").bind(mobile)).await
    }

    async fn spend_code(&self, mobile: &Mobile, kind: &str, digest: &str, day: &Taken) -> StoreResult<bool> {
        let spend = Stmt::new("DELETE FROM sms_codes WHERE mobile = $1 AND kind = $2 AND digest = $3")
            .bind(mobile)
            .bind(kind)
            .bind(digest);
        // The entry's place on the day goes back only with the code spent
        // here: a call that lost the race gives nothing back.
        if self.execute(spend).await? != 1 {
            return Ok(false);
        }
        self.execute(give(day)).await?;
        Ok(true)
    }
}
