//! Reading a dispatcher's Prometheus text (`/metrics`) during and after a benchmark run.

/// The page at `url`, or `None` when the dispatcher did not answer.
pub async fn scrape(http: &reqwest::Client, url: &str) -> Option<String> {
    http.get(url).send().await.ok()?.text().await.ok()
}

/// The values of every series of the metric `name` (all label sets).
pub fn values<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .filter(move |l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
}

/// Calls held up past their moment and claimed again (`dialer_originates_put_back_late_total`,
/// every server).
pub fn put_back_late(text: &str) -> u64 {
    values(text, "dialer_originates_put_back_late_total").sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_label_set_of_one_metric_only() {
        let text = "# TYPE dialer_originates_put_back_late_total counter\n\
                    dialer_originates_put_back_late_total{server=\"a\"} 3\n\
                    dialer_originates_put_back_late_total{server=\"b\"} 4\n\
                    dialer_originates_put_back_late_total_other 100\n\
                    dialer_server_capacity_factor{server=\"a\"} 0.5\n";
        assert_eq!(put_back_late(text), 7);
        let factors: Vec<f64> = values(text, "dialer_server_capacity_factor").collect();
        assert_eq!(factors, vec![0.5]);
        assert_eq!(put_back_late(""), 0);
    }
}
