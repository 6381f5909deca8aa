"""Full-ranking evaluation: target ranks, top-K metrics, popularity buckets."""
