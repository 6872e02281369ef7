"""Evaluation: benchmark rows -> prompts -> model responses -> predictions.jsonl -> official scores -> reports.
Never imports training code."""
