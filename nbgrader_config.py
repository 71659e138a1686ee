"""nbgrader configuration of the course: this folder is the course directory."""

from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides get_config)

COURSE_ROOT = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "deep-networks"
c.CourseDirectory.root = str(COURSE_ROOT)
# Lessons are authored as jupytext percent files (source/<assignment>/*.py); the .ipynb beside
# each is generated from it. Neither the .py sources nor caches belong in a release or submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# Stubs the students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading budget: one completed notebook autogrades in well under a minute on 2 CPU cores;
# a cell that runs past this (5 minutes, for slow or shared machines) is stopped, so one
# runaway submission cannot hold up the class.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
# Student notebooks run the training cells in the quick budget while validated or autograded
# (deepnets.pick_budget reads NBGRADER_EXECUTION, which nbgrader sets).
