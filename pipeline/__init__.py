"""汇编 (huibian): reads a reporting season's work reports and tells what each unit reported."""

__version__ = "0.1.0"
