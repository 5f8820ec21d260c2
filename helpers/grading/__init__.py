"""The grader's parts, one job per module; the public door is :mod:`helpers.grade` (orchestration, CLI).

One submission, in pipeline order:
    submission  read the file once: SHA-256, parsed cells, chapter, the cells the grader runs
    plan        this run's random cases and reference answers per chapter; the run's limits
    run         one run in a fresh sandbox: the job, the phases of its deadline, its rlimits
    sandbox     bubblewrap (no network, own PID namespace, read-only environment), bounded reads
    warm        one fork server per job slot (torch imported once), each submission a fresh child of it
    forkserver  what runs INSIDE that sandbox: new namespaces, uid and /tmp per child, then the runner
    runner      what runs INSIDE the sandbox: the cells, then each function on the cases
    collect     what came back → a typed RunReport, defensively
    notes       what went wrong in the run as a whole; why a function is missing
    judge       each question judged here → QuestionResult; the submission's SubmissionReport
Presenting a batch (each reads only the typed records of ``report``):
    report      QuestionResult, SubmissionReport, ClassReport, points (standard library only)
    csvlog      grades.csv: rows appended as graded, atomic rewrite, --resume
    summary     the printed summary and <out>_run.json
    feedback    one page per submission;   overview  the class page and wrong-answer patterns
    gradebook   one row per student (roster, LMS columns);  nbgrader  the nbgrader course export

Imports flow one way (tests/test_grade.py checks there is no cycle): ``report`` and ``sandbox``
import no other grading module; ``runner`` (copied into the sandbox's graded view with this file)
imports only ``helpers.checks.protocol`` and ``helpers.checks.graded``.
"""
