"""WDL: wrappers bind the method names diagrams call to Python classes and parameter expressions."""

from .expr import Expr, Literal, Scope, Template, Var, evaluate, parse_expression, unparse, variables
from .model import Param, Wrapper, WrapperMethod
from .parser import parse_wdl, to_xml
from .resolve import check_wrapper, resolve_class, resolve_method

__all__ = ["Expr", "Literal", "Param", "Scope", "Template", "Var", "Wrapper", "WrapperMethod", "check_wrapper",
           "evaluate", "parse_expression", "parse_wdl", "resolve_class", "resolve_method", "to_xml", "unparse",
           "variables"]
