"""Admin page forms (Flask-WTF: every form carries the session's CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField(
        _l("用户名"),
        validators=[DataRequired(message=_l("请填写用户名")), Length(max=64)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("密码"),
        validators=[DataRequired(message=_l("请填写密码")), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
