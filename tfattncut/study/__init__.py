"""The method study (docs/design/study.md): every method trained side by side on one data set
and budget, measured by fixed, committed scorers over several seeds, and reported with the
statistics its claims need.

plan (what runs) -> runner (train, score) -> scores (the files, checked) -> summary
(numbers) -> page / report (Markdown, JSON, images). data is the study's data set, scorers its
committed instruments, measures what they measure, statistics the tests, events what a run's
TensorBoard files say, grid the sample grid.
"""
