//! Fetching every page of a list RPC, or only as many rows as `--limit` asks for.

use std::future::Future;

use tonic::Status;

/// The largest page the server accepts.
const MAX_PAGE: u32 = 1000;

/// Calls `page(page_size, page_token)` until the last page or `limit` rows.
pub async fn fetch_all<T, F, Fut>(limit: Option<u32>, mut page: F) -> Result<Vec<T>, Status>
where
    F: FnMut(u32, String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let limit = limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let wanted = limit.map_or(usize::MAX, |limit| limit.saturating_sub(rows.len()));
        let size = u32::try_from(wanted).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let (mut batch, next) = page(size, token).await?;
        rows.append(&mut batch);
        if limit.is_some_and(|limit| rows.len() >= limit) {
            rows.truncate(limit.unwrap_or(usize::MAX));
            break;
        }
        if next.is_empty() {
            break;
        }
        token = next;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake list of `total` rows served in pages.
    async fn serve(total: u32, limit: Option<u32>) -> (Vec<u32>, Vec<u32>) {
        let mut sizes = Vec::new();
        let rows = fetch_all(limit, |size, token| {
            sizes.push(size);
            let start: u32 = token.parse().unwrap_or(0);
            let end = (start + size).min(total);
            let next = if end < total {
                end.to_string()
            } else {
                String::new()
            };
            async move { Ok(((start..end).collect(), next)) }
        })
        .await
        .expect("pages");
        (rows, sizes)
    }

    #[tokio::test]
    async fn every_page_by_default() {
        let (rows, sizes) = serve(2500, None).await;
        assert_eq!(rows.len(), 2500);
        assert_eq!(sizes, [1000, 1000, 1000]);
    }

    #[tokio::test]
    async fn limit_stops_early_and_asks_for_no_more() {
        let (rows, sizes) = serve(2500, Some(1200)).await;
        assert_eq!(rows, (0..1200).collect::<Vec<_>>());
        assert_eq!(sizes, [1000, 200]);
    }
}
