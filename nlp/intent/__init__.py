"""Intent classification: the calibrated model, its training and its evaluation.

Pure: imports numpy, scikit-learn and spaCy, nothing else of ours.
"""
