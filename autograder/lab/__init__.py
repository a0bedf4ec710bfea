"""The book's experiment library: what the chapters import to train and measure.

This is not the grader (``autograder.checks`` and ``autograder.grading`` import none of it).
``models`` holds the PyTorch sequence models and the training loop, ``data`` the evaluation
sets and task batches, and one module per chapter's experiments, named after its topic:
``truncated_bptt`` (5), ``gru_conventions`` (7), ``long_range`` (8), ``word2vec`` (9),
``char_lm`` (10), ``regularization`` (11), ``word_lm`` (12). The NumPy references the
exercises grade against are in ``autograder.reference``.
"""
