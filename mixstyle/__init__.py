"""mixstyle: learn one producer's mixing style and mix new stems like they would."""
