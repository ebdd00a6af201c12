"""Post-incident reviews (PIR): the review of one incident, its versions,
comments, action items and selected timeline events; recurrences; the
manager view and its trend charts.

A sub-package of the incidents app (reviews are about incidents and share its
migrations), with the app's usual split: models, services (writes),
selectors (reads), trends, forms, views, urls, export, recurrence, demo.
"""
