"""What a run leaves on disk, and how it is found again: every file name of a run directory and of an
embedding dump (``files.py``), where a fit's directory is and whether it resumes (``plan.py``), and
the checkpoint format, loaded as data only (``checkpoint.py``). Neither training nor analysis: both
read these, and :mod:`tiedtransformer.analysis` imports nothing from :mod:`tiedtransformer.training`."""
