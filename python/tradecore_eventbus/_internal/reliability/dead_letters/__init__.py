"""Dead letters: the record format (``record``), values JSON cannot carry (``values``),
and the one writer every path goes through (``writer``)."""
